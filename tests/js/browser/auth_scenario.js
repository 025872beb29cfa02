// Runs in the page (browser_check.mjs --page /auth) against a server with MODELSHELF_AUTH=tokens
// that lists this page's origin in its CORS origins. Query: server, store, prefix (a name prefix
// the writer token may write), writer, reader (a read-only token).
//
// Saves with tf.io.http and an Authorization header (Chromium preflights it; the preflight has
// no token), loads with ?token= (and with the header), loads through a share link, and reads
// the server's 401 and 403 bodies, which a cross-origin page sees only thanks to CORS headers.
// Everything observed goes into window.__result for the test to assert on.
const params = new URLSearchParams(location.search);
const server = params.get('server');
const store = params.get('store');
const prefix = params.get('prefix');
const writer = params.get('writer');
const reader = params.get('reader');
// log, seededModel, input and predict come from common.js.
const bearer = (token) => ({Authorization: `Bearer ${token}`});
const modelUrl = (name) => `${server}/v1/models/${store}/${encodeURIComponent(name).replace(/%2F/g, '/')}`;
const withToken = (url, token) => `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;

/** A response as the page can read it: status, the JSON body, the exposed challenge header. */
async function readable(response) {
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return {status: response.status, body, challenge: response.headers.get('WWW-Authenticate')};
}

/** A TF.js save expected to be refused: TF.js's error, and the refused response as read by the page. */
async function refusedSave(name, requestInit) {
  let last = null;
  const fetchFunc = async (...args) => (last = await fetch(...args));
  try {
    await seededModel(9).save(tf.io.http(modelUrl(name), {requestInit, fetchFunc}));
    return {error: null};
  } catch (error) {
    return {error: String(error.message), ...(last ? await readable(last) : {})};
  }
}

async function loadError(url, options) {
  try {
    await tf.loadLayersModel(url, options);
    return null;
  } catch (error) {
    return String(error.message);
  }
}

async function main() {
  tf.setBackend('cpu');
  const report = {origin: location.origin};
  const name = `${prefix}/saved model ü`;
  const url = modelUrl(name);
  const model = seededModel(3);
  report.want = predict(model);

  // Authorization is not a CORS-safelisted header: this POST is preflighted first.
  const saved = await model.save(tf.io.http(url, {requestInit: {headers: bearer(writer)}}));
  report.save = await readable(saved.responses[0]);
  log(`saved ${name}: ${report.save.status}`);

  // The token in the model.json query; TF.js copies it onto the weight URL.
  report.loadedWithQuery = predict(await tf.loadLayersModel(withToken(`${url}/model.json`, reader)));
  report.loadedWithHeader = predict(await tf.loadLayersModel(`${url}/model.json`,
      {requestInit: {headers: bearer(reader)}}));
  log('loaded with ?token= and with the header');

  // A share link made from the page, loaded with nothing but its URL.
  const share = await fetch(`${url}/~share`, {method: 'POST',
    headers: {...bearer(writer), 'Content-Type': 'application/json'}, body: JSON.stringify({expiresIn: 600})});
  const link = await readable(share);
  report.share = {status: link.status, url: link.body.url};
  report.loadedWithShareLink = predict(await tf.loadLayersModel(link.body.url));
  log('loaded through the share link');

  // Refusals, readable cross-origin: 401 without a token, 403 for a scope the token lacks.
  report.unauthorized = await readable(await fetch(`${server}/v1/models/${store}`));
  report.loadWithoutToken = await loadError(`${url}/model.json`);
  report.saveWithoutToken = await refusedSave(`${prefix}/anonymous`, undefined);
  report.saveWithReader = await refusedSave(`${prefix}/read only`, {headers: bearer(reader)});
  report.listWithReader = await readable(await fetch(`${server}/v1/models/${store}`, {headers: bearer(reader)}));
  log('read the 401 and 403 bodies');
  return {ok: true, ...report, log: document.getElementById('log').textContent};
}

window.__result = main().catch((error) => ({ok: false, error: String(error && error.stack || error),
  log: document.getElementById('log').textContent}));
