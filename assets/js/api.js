// Talking to the MelodyMaker server: JSON (or a multipart form) in, JSON out, errors as plain
// sentences; and one loop that follows a job (a generation, an extension) to its end.
import { sleep } from "./util.js";

export class ApiError extends Error {
  /** status: HTTP status (0 = no answer); field: the request field the server blamed, if any. */
  constructor(message, { status = 0, field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** body: an object sent as JSON, or a FormData sent as multipart (an upload). */
export async function api(path, { method = "GET", body } = {}) {
  const multipart = body instanceof FormData;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined || multipart ? {} : { "Content-Type": "application/json" },
      body: body === undefined || multipart ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("Could not reach the MelodyMaker server. Is it still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(explain(response, data), {
      status: response.status,
      field: data && data.field ? data.field : null,
      retryAfter: response.headers.get("Retry-After"),
    });
  }
  return data;
}

/** Poll GET /api/tracks/{id} until the job is done, failed or cancelled; onState(state) sees every
answer. Returns the last state; a server that stops answering (5 tries in a row) throws its ApiError. */
export async function followJob(id, onState = () => {}, { every = 350 } = {}) {
  let failures = 0;
  for (;;) {
    let state;
    try {
      state = await api(`/api/tracks/${id}`);
      failures = 0;
    } catch (err) {
      if (++failures < 5) { await sleep(800); continue; }
      throw err;
    }
    onState(state);
    if (["done", "error", "cancelled"].includes(state.status)) return state;
    await sleep(every);
  }
}

/** A failed job's error as an ApiError (its message made a sentence, its status and field kept). */
export function jobError(state, fallback = "the job failed") {
  const e = state.error || {};
  return new ApiError(sentence(e.message || fallback), { status: e.status, field: e.field });
}

/** The server's message, made into a sentence, with what to do for the statuses that need it. */
function explain(response, data) {
  const message = sentence(data && data.message ? data.message : "");
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    return `The server is busy. ${message} ${wait ? `Try again in ${wait} s.` : ""}`.trim();
  }
  if (response.status === 413) {
    return message || "The file is too large for the server.";
  }
  if (response.status >= 500 && response.status !== 503) {
    return `Something went wrong on the server${message ? `: ${message}` : "."}`;
  }
  return message || `The server answered ${response.status} ${response.statusText}.`;
}

export function sentence(text) {
  if (!text) return "";
  const t = text.trim();
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}
