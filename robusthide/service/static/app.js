// robusthide page: choose or drop an image, then mark it (POST /embed) or verify it (POST /extract).
"use strict";
const $ = (id) => document.getElementById(id);
let file = null;
let markedUrl = null;

function show(id, on) { $(id).hidden = !on; }

function setError(text) {
  $("error").textContent = text ? "Error: " + text : "";
  show("error", Boolean(text));
}

function busy(text) {
  $("status").textContent = text || "";
  $("mark").disabled = $("verify").disabled = Boolean(text);
}

function choose(f) {
  if (!f) return;
  file = f;
  $("chosen").textContent = `${f.name} (${(f.size / 1024).toFixed(0)} KiB)`;
  const img = $("preview");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(f);
  img.hidden = false;
  setError("");
  show("result", false);
}

async function post(path, fields) {
  if (!file) throw new Error("choose an image first");
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== null) form.append(k, v);
  const r = await fetch(path, { method: "POST", body: form });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

function blobOf(b64, type) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Blob([bytes], { type });
}

async function mark(ev) {
  ev.preventDefault();
  setError("");
  busy("Marking...");
  try {
    const j = await post("/embed", { message: $("message").value, kind: $("kind").value });
    if (markedUrl) URL.revokeObjectURL(markedUrl);
    markedUrl = URL.createObjectURL(blobOf(j.image, j.media_type));
    $("marked-img").src = markedUrl;
    $("residual-img").src = "data:image/png;base64," + j.residual;
    $("residual-caption").textContent =
      `where the mark is: |marked - original| x ${j.residual_gain.toFixed(1)}`;
    $("mark-info").textContent =
      `Message ${JSON.stringify(j.message)} hidden in ${j.size[0]} x ${j.size[1]} px, ` +
      (j.psnr === null ? "no pixel changed, " : `PSNR ${j.psnr} dB, `) +
      `${(j.bytes / 1024).toFixed(0)} KiB.`;
    const a = $("download");
    a.href = markedUrl;
    a.download = j.filename;
    a.textContent = `Download ${j.filename}`;
    show("marked", true);
  } catch (e) {
    setError(e.message);
  } finally {
    busy("");
  }
}

async function verify(ev) {
  ev.preventDefault();
  setError("");
  busy("Verifying...");
  try {
    const j = await post("/extract", { search: $("search").checked ? "crop" : "none" });
    const v = $("verdict");
    v.textContent = j.detected ? "Watermark present" : "No watermark found";
    v.className = j.detected ? "present" : "absent";
    $("pvalue").textContent = j.p_value.toExponential(2) + (j.detected ? "" : " (above the 1e-6 threshold)");
    $("found-message").textContent = j.detected ? String(j.message) : "-";
    $("result-file").textContent = j.input;
    show("result", true);
  } catch (e) {
    setError(e.message);
  } finally {
    busy("");
  }
}

async function capacity() {
  try {
    const c = await (await fetch("/capacity")).json();
    $("capacity").textContent = `This model's schema "${c.schema_name}" holds a number 0..${c.max_int}, ` +
      `${c.max_text_ascii_chars} ASCII character(s) or ${c.max_hex_digits} hex digits.`;
  } catch (e) { /* the hint is optional */ }
}

const drop = $("drop");
$("file").addEventListener("change", (e) => choose(e.target.files[0]));
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  choose(e.dataTransfer.files[0]);
});
$("mark-form").addEventListener("submit", mark);
$("verify-form").addEventListener("submit", verify);
capacity();
