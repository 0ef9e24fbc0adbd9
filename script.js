// MelodyMaker's page: load the options, start a generation job, poll it, play and download.
"use strict";

const $ = (id) => document.getElementById(id);

async function loadOptions() {
  const options = await (await fetch("/api/options")).json();
  $("genre").innerHTML = options.genres
    .map((g) => `<option value="${g.name}">${g.label}</option>`).join("");
  $("instruments").innerHTML = options.instruments
    .map((i) => `<label><input type="checkbox" name="instruments" value="${i.name}"> ${i.label}</label>`)
    .join("");
  $("modes").innerHTML = options.modes.map((m, k) => `
    <label class="${m.available ? "" : "unavailable"}" title="${m.reason || m.description}">
      <input type="radio" name="mode" value="${m.name}" ${m.available ? "" : "disabled"}
        ${k === 0 ? "checked" : ""}> ${m.label}
      <small>${m.available ? m.description : "unavailable: " + m.reason}</small>
    </label>`).join("");
}

function showError(message) {
  $("status").textContent = message;
  $("status").className = "error";
  $("progress").hidden = true;
}

async function generate(event) {
  event.preventDefault();
  const form = new FormData($("generate-form"));
  const body = {
    genre: form.get("genre"),
    instruments: form.getAll("instruments"),
    tempo: Number(form.get("tempo")),
    length: Number(form.get("length")),
    mode: form.get("mode"),
  };
  if (form.get("seed")) body.seed = Number(form.get("seed"));
  $("status").className = "";
  $("status").textContent = "Queued…";
  $("progress").hidden = false;
  $("result").hidden = true;
  const response = await fetch("/api/tracks", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  const job = await response.json();
  if (!response.ok) return showError(job.message);
  poll(job.id);
}

async function poll(id) {
  const job = await (await fetch(`/api/tracks/${id}`)).json();
  $("progress").value = job.progress || 0;
  if (job.status === "error") return showError(job.error.message);
  if (job.status !== "done") {
    $("status").textContent = `${job.status}: ${job.message || ""}`;
    return setTimeout(() => poll(id), 400);
  }
  const meta = job.meta;
  $("status").textContent = "Done.";
  $("progress").hidden = true;
  $("result").hidden = false;
  $("player").src = job.files.wav;
  $("info").textContent = `${meta.genre}, ${meta.mode}, seed ${meta.seed}, ` +
    `${meta.length.toFixed(1)} s, tempo ${meta.tempo} BPM (measured ${meta.measured_tempo}), ` +
    `made in ${meta.timings.total} s`;
  for (const ext of ["wav", "mp3", "mid"]) {
    $(`dl-${ext}`).href = `/api/tracks/${id}/audio.${ext}?download=1`;
  }
}

$("tempo").addEventListener("input", () => { $("tempo-value").textContent = $("tempo").value; });
$("length").addEventListener("input", () => { $("length-value").textContent = $("length").value; });
$("generate-form").addEventListener("submit", (e) => generate(e).catch((err) => showError(String(err))));
loadOptions().catch((err) => showError(`Could not load the options: ${err}`));
