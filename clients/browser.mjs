// A real browser (headless Chromium) on a page of the app's origin and on a page of another origin, both served
// by Playwright's router (no server for them): what the browser's own CORS and WebSocket rules let each page do
// against a live runplane. Prints one JSON object.
//
//   node clients/browser.mjs '{"http": ..., "ws": ..., "token": ..., "origin": ..., "otherOrigin": ...}'
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const result = {};

// Runs in the page: a query through CORS (Authorization makes it preflighted), the headers a script may read
// from a 429, and a graphql-transport-ws socket.
async function inPage({ http, ws, token, limit }) {
  const out = {};
  const query = (body) =>
    fetch(http, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  try {
    const answer = await query({ query: '{ me { email } }' });
    out.query = { status: answer.status, body: await answer.json() };
  } catch (error) {
    out.query = { error: String(error) };
  }
  out.socket = await new Promise((resolve) => {
    const socket = new WebSocket(ws, 'graphql-transport-ws');
    const timer = setTimeout(() => resolve({ error: 'timeout' }), 10000);
    socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === 'connection_ack') socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ me { email } }' } }));
      if (data.type === 'next') {
        clearTimeout(timer);
        socket.close();
        resolve({ email: data.payload.data.me.email });
      }
    };
    socket.onclose = (event) => {
      clearTimeout(timer);
      resolve({ closed: event.code });
    };
  });
  if (limit && out.query && out.query.status === 200) {
    for (let n = 0; n < limit; n += 1) {
      const answer = await query({ query: '{ __typename }' });
      if (answer.status === 429) {
        out.limited = { retryAfter: answer.headers.get('retry-after'), requestId: answer.headers.get('x-request-id'), body: await answer.json() };
        break;
      }
    }
  }
  return out;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    // The pages come from Playwright's router, which Chromium places outside the loopback address space: its
    // Local Network Access checks would refuse every request to the server (on 127.0.0.1) before CORS applies.
    // A deployed app and API are both public; CORS and the WebSocket Origin check are what this run looks at.
    '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests',
  ],
});
try {
  const context = await browser.newContext();
  for (const origin of [config.origin, config.otherOrigin]) {
    await context.route(`${origin}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>app</title>' }));
  }
  for (const [name, origin, limit] of [['allowed', config.origin, 1000], ['other', config.otherOrigin, 0]]) {
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    result[name] = await page.evaluate(inPage, { ...config, limit });
    await page.close();
  }
} catch (error) {
  result.error = String(error).slice(0, 500);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
