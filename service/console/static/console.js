// The console's script: tokens, actions through the public API, uploads with progress.
// Pages are server-rendered; with tokens on, this script fetches them again with the token
// in an Authorization header and swaps them in, so a token never sits in a URL.
"use strict";

const TOKEN_KEY = "modelshelf.token";
const tokensOn = () => document.body.dataset.tokens === "on";
const token = () => sessionStorage.getItem(TOKEN_KEY);

function authHeaders(extra = {}) {
  const headers = { ...extra };
  if (tokensOn() && token()) headers.Authorization = `Bearer ${token()}`;
  return headers;
}

function showMessage(text, kind = "info") {
  const box = document.getElementById("messages");
  const item = document.createElement("p");
  item.className = `message ${kind}`;
  item.textContent = text;
  box.replaceChildren(item);
  if (kind === "error") item.setAttribute("role", "alert");
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.message) return `${body.message} (${body.code}, HTTP ${response.status})`;
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status} ${response.statusText}`;
}

// One call to the API; throws an Error carrying the server's message.
async function api(method, url, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(await errorText(response));
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : null;
}

// -- pages with a token ---------------------------------------------------------------------

async function navigate(url, { push = true } = {}) {
  const response = await fetch(url, { headers: authHeaders({ Accept: "text/html" }) });
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("text/html")) {
    showMessage(await errorText(response), "error");
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["main", "crumbs"]) {
    const fresh = page.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(fresh);
  }
  document.title = page.title;
  if (push) history.pushState({}, "", url);
  document.getElementById("main").focus({ preventScroll: true });
}

const reload = () => (tokensOn() ? navigate(location.href, { push: false }) : location.reload());

function isConsoleLink(anchor) {
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return false;
  const url = new URL(anchor.href, location.href);
  return url.origin === location.origin && (url.pathname === "/" || url.pathname.startsWith("/ui/"));
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a");
  if (!tokensOn() || !token() || !isConsoleLink(anchor) || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  navigate(anchor.href).catch((error) => showMessage(error.message, "error"));
});

window.addEventListener("popstate", () => navigate(location.href, { push: false }));

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id === "token-form") {
    event.preventDefault();
    const value = form.elements.token.value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    form.reset();
    navigate(location.href, { push: false }).catch((error) => showMessage(error.message, "error"));
    return;
  }
  const handler = FORMS[form.id];
  if (handler) {
    event.preventDefault();
    handler(form, event.submitter).catch((error) => showMessage(error.message, "error"));
    return;
  }
  if (form.method === "get" && tokensOn() && token()) {
    event.preventDefault();
    const url = new URL(form.action, location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    navigate(url.href).catch((error) => showMessage(error.message, "error"));
  }
});

// -- actions --------------------------------------------------------------------------------

const model = () => document.getElementById("model").dataset;

const ACTIONS = {
  async "remove-version"(button) {
    const version = button.dataset.version;
    if (!confirm(`Remove version ${version} of ${model().url}? This cannot be undone.`)) return;
    await api("DELETE", `${model().api}?version=${encodeURIComponent(version)}`);
    showMessage(`Removed version ${version}.`);
    await reload();
  },
  async "remove-model"() {
    if (!confirm(`Remove ${model().url} and every version of it? This cannot be undone.`)) return;
    const storePage = model().storePage;
    await api("DELETE", model().api);
    showMessage(`Removed ${model().url}.`);
    await (tokensOn() ? navigate(storePage) : (location.href = storePage));
  },
  async "remove-alias"(button) {
    const alias = button.dataset.alias;
    if (!confirm(`Delete the alias ${alias}?`)) return;
    await api("DELETE", `${model().api}/~aliases/${encodeURIComponent(alias)}`);
    showMessage(`Deleted the alias ${alias}.`);
    await reload();
  },
};

const FORMS = {
  async "alias-form"(form) {
    const alias = form.elements.alias.value.trim();
    const version = form.elements.version.value;
    await api("PUT", `${model().api}/~aliases/${encodeURIComponent(alias)}`, { versionId: version });
    showMessage(`${alias} now points to ${version}.`);
    await reload();
  },
  async "transfer-form"(form, submitter) {
    const op = submitter && submitter.value === "move" ? "move" : "copy";
    const store = form.elements.store.value;
    const name = form.elements.name.value.trim();
    const destination = `${store}://${name}`;
    if (op === "move" && !confirm(`Move ${model().url} to ${destination}?`)) return;
    await api("POST", `/v1/${op}`, { source: model().url, destination });
    showMessage(`${op === "move" ? "Moved" : "Copied"} to ${destination}.`);
    const target = `/ui/${encodeURIComponent(store)}/${name.split("/").map(encodeURIComponent).join("/")}`;
    await (tokensOn() ? navigate(target) : (location.href = target));
  },
  "upload-form": upload,
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const action = ACTIONS[button.dataset.action];
  if (action) {
    action(button).catch((error) => showMessage(error.message, "error"));
  } else if (button.dataset.copy) {
    copyText(document.querySelector(button.dataset.copy));
  } else if (button.id === "share") {
    share(button).catch((error) => showMessage(error.message, "error"));
  } else if (button.id === "token-forget") {
    sessionStorage.removeItem(TOKEN_KEY);
    showMessage("The token is forgotten.");
    navigate(location.href, { push: false });
  }
});

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a#download");
  if (!anchor || !tokensOn() || !token()) return;
  event.preventDefault();  // a link cannot carry the header: fetch, then save the blob
  download(anchor.href).catch((error) => showMessage(error.message, "error"));
});

async function download(url) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await errorText(response));
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*=UTF-8''([^;]+)/.exec(disposition);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = match ? decodeURIComponent(match[1]) : "model.zip";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

async function share(button) {
  // The current version's page shares the model (the link follows new saves); an older
  // version's page shares that version only.
  const request = { expiresIn: 3600 };
  if (button.dataset.version) request.version = button.dataset.version;
  const link = await api("POST", `${model().api}/~share`, request);
  const box = document.getElementById("share-result");
  box.hidden = false;
  box.querySelector("input").value = link.url;
}

async function copyText(element) {
  const text = element.value !== undefined ? element.value : element.textContent;
  try {
    await navigator.clipboard.writeText(text);
    showMessage("Copied.");
  } catch (_) {  // no clipboard outside secure contexts: select it for Ctrl+C
    const range = document.createRange();
    range.selectNodeContents(element);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    showMessage("Selected: press Ctrl+C to copy.");
  }
}

// -- upload ---------------------------------------------------------------------------------

let chosen = [];

function choose(files) {
  chosen = Array.from(files);
  const list = document.getElementById("upload-list");
  list.replaceChildren(...chosen.map((file) => {
    const item = document.createElement("li");
    item.textContent = `${file.name} (${file.size} bytes)`;
    return item;
  }));
  const json = chosen.find((file) => file.name.endsWith(".json"));
  const nameField = document.getElementById("upload-name");
  if (json && nameField && !nameField.value) {
    nameField.value = json.name === "model.json" ? "" : json.name.replace(/\.json$/, "");
  }
}

document.addEventListener("change", (event) => {
  if (event.target.id === "upload-files") choose(event.target.files);
});
document.addEventListener("dragover", (event) => {
  const zone = event.target.closest && event.target.closest("#upload-drop");
  if (!zone) return;
  event.preventDefault();
  zone.classList.add("over");
});
document.addEventListener("dragleave", (event) => {
  const zone = event.target.closest && event.target.closest("#upload-drop");
  if (zone) zone.classList.remove("over");
});
document.addEventListener("drop", (event) => {
  const zone = event.target.closest && event.target.closest("#upload-drop");
  if (!zone) return;
  event.preventDefault();
  zone.classList.remove("over");
  choose(event.dataTransfer.files);
});

// The body tf.io.http sends: model.json, then each weight file in weightsManifest order.
async function saveBody(files) {
  const jsonFiles = files.filter((file) => file.name.endsWith(".json"));
  if (jsonFiles.length !== 1) {
    throw new Error("choose exactly one .json file (model.json) and the weight files it names");
  }
  const text = await jsonFiles[0].text();
  let document_;
  try {
    document_ = JSON.parse(text);
  } catch (error) {
    throw new Error(`${jsonFiles[0].name} is not JSON: ${error.message}`);
  }
  const paths = (document_.weightsManifest || []).flatMap((group) => group.paths || []);
  const byName = new Map(files.map((file) => [file.name, file]));
  const missing = paths.filter((path) => !byName.has(path.split("/").pop()));
  if (missing.length) throw new Error(`model.json names files you did not choose: ${missing.join(", ")}`);
  const body = new FormData();
  body.append("model.json", new Blob([text], { type: "application/json" }), "model.json");
  for (const path of paths) {
    body.append(path, byName.get(path.split("/").pop()), path);
  }
  return body;
}

async function upload(form) {
  const section = document.getElementById("upload");
  const name = form.elements.name.value.trim();
  const body = await saveBody(chosen);
  const url = section.dataset.saveBase + name.split("/").map(encodeURIComponent).join("/");
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  progress.hidden = false;
  progress.value = 0;
  const result = await new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
    request.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      progress.value = event.loaded / event.total;
      status.textContent = `${Math.round(100 * progress.value)}% of ${event.total} bytes`;
    };
    request.onload = () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(answer);
      else reject(new Error(answer && answer.message
        ? `${answer.message} (${answer.code}, HTTP ${request.status})`
        : `HTTP ${request.status}`));
    };
    request.onerror = () => reject(new Error("the upload failed: the server is unreachable"));
    request.send(body);
  });
  status.textContent = "Saved.";
  showMessage(`Saved ${name}${result && result.versionId ? ` as version ${result.versionId}` : ""}.`);
  const target = section.dataset.pageBase + name.split("/").map(encodeURIComponent).join("/");
  await (tokensOn() ? navigate(target) : (location.href = target));
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("[data-needs-token]") && token()) {
    navigate(location.href, { push: false }).catch((error) => showMessage(error.message, "error"));
  }
});
