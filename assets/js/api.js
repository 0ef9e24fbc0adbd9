// Talking to the MelodyMaker server: JSON in, JSON out, errors as plain sentences.

export class ApiError extends Error {
  /** status: HTTP status (0 = no answer); field: the request field the server blamed, if any. */
  constructor(message, { status = 0, field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
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

/** The server's message, made into a sentence, with what to do for the statuses that need it. */
function explain(response, data) {
  const message = sentence(data && data.message ? data.message : "");
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    return `The server is busy. ${message} ${wait ? `Try again in ${wait} s.` : ""}`.trim();
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
