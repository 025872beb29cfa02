// Runs in the page: saves with tf.io.http (POST, and PUT with an Authorization header),
// loads with tf.loadLayersModel, compares predictions, then lists, copies, moves and removes
// through fetch. Every request crosses origins, so CORS and preflights are exercised.
const params = new URLSearchParams(location.search);
const server = params.get('server');
const stores = params.get('stores').split(',');
// log, seededModel, input and predict come from common.js.

async function checkedFetch(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${init && init.method || 'GET'} ${url} -> ${response.status} ${await response.text()}`);
  return response;
}

async function roundTrip(store, name, seed, requestInit) {
  const url = `${server}/v1/models/${store}/${encodeURIComponent(name).replace(/%2F/g, '/')}`;
  const model = seededModel(seed);
  await model.save(tf.io.http(url, requestInit ? {requestInit} : undefined));
  const loaded = await tf.loadLayersModel(url + '/model.json', requestInit ? {requestInit: {headers: requestInit.headers}} : undefined);
  const want = predict(model), got = predict(loaded);
  if (JSON.stringify(want) !== JSON.stringify(got)) throw new Error(`${store}://${name}: predictions differ ${want} vs ${got}`);
  log(`ok ${store}://${name} ${requestInit ? requestInit.method : 'POST'}`);
  return want;
}

async function manage(store, tag) {
  const json = {'Content-Type': 'application/json'};
  const name = `browser/${tag}/a`;
  const want = await roundTrip(store, name, 1);
  const listed = await (await checkedFetch(`${server}/v1/models/${store}?prefix=browser/${tag}/`)).json();
  if (!(`${store}://${name}` in listed)) throw new Error(`list misses ${name}: ${JSON.stringify(listed)}`);
  await checkedFetch(`${server}/v1/copy`, {method: 'POST', headers: json,
    body: JSON.stringify({source: `${store}://${name}`, destination: `${store}://browser/${tag}/copy`})});
  await checkedFetch(`${server}/v1/move`, {method: 'POST', headers: json,
    body: JSON.stringify({source: `${store}://browser/${tag}/copy`, destination: `${store}://browser/${tag}/moved`})});
  const moved = await tf.loadLayersModel(`${server}/v1/models/${store}/browser/${tag}/moved/model.json`);
  if (JSON.stringify(predict(moved)) !== JSON.stringify(want)) throw new Error('moved model predicts differently');
  await checkedFetch(`${server}/v1/models/${store}/${name}`, {method: 'DELETE'});
  const gone = await fetch(`${server}/v1/models/${store}/${name}/model.json`);
  if (gone.status !== 404) throw new Error(`removed model answered ${gone.status}`);
  const error = await gone.json();  // the error body is readable: CORS headers on errors too
  if (error.code !== 'model_not_found') throw new Error(`unexpected error body ${JSON.stringify(error)}`);
  log(`ok ${store}: list, copy, move, remove`);
}

async function main() {
  tf.setBackend('cpu');
  const tag = Math.random().toString(36).slice(2, 8);
  for (const store of stores) {
    await roundTrip(store, `browser/${tag}/post model ü`, 7);
    await roundTrip(store, `browser/${tag}/put`, 8, {method: 'PUT', headers: {Authorization: 'Bearer browser-token'}});
    await manage(store, tag);
  }
  return {ok: true, origin: location.origin, log: document.getElementById('log').textContent};
}

window.__result = main().catch((error) => ({ok: false, error: String(error && error.stack || error),
  log: document.getElementById('log').textContent}));
