// Shared by the client scripts: the run's configuration, one JSON line per step, and a fetch that records
// what went over the wire (the clients themselves are configured with their defaults; only the URL and the
// token are set).
import WebSocket from 'ws';

export const config = JSON.parse(process.argv[2]);

export const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

// A GET request's operation, as a POST body would carry it.
const fromUrl = (url) => {
  const params = new URL(url).searchParams;
  const body = {};
  for (const [key, value] of params) body[key] = key === 'extensions' || key === 'variables' ? JSON.parse(value) : value;
  return body;
};

// Every HTTP exchange, in order: method, Accept, body sent, status, content type, Retry-After.
export const wire = [];
export const recordingFetch = async (input, init = {}) => {
  const response = await fetch(input, init);
  const headers = new Headers(init.headers);
  wire.push({
    method: init.method || 'GET',
    url: String(input),
    accept: headers.get('accept'),
    body: typeof init.body === 'string' ? JSON.parse(init.body) : fromUrl(String(input)),
    status: response.status,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
  });
  return response;
};

// A browser's WebSocket as the server sees it: the page's Origin on the handshake.
export class BrowserWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { origin: config.origin });
  }
}

// Runs `fn` as step `name`: prints {step, ...facts} or {step, error}.
export async function step(name, fn) {
  const mark = wire.length;
  try {
    const facts = await fn(() => wire.slice(mark));
    print({ step: name, ...facts });
  } catch (error) {
    print({ step: name, error: String(error && error.stack ? error.stack : error) });
  }
}

export function eventsOf(observable, pick, timeoutMs = 20000) {
  // Subscribes to an Observable-like source (Apollo's, or urql's via a wrapper) until it completes.
  return new Promise((resolve, reject) => {
    const events = [];
    const timer = setTimeout(() => reject(new Error(`timeout after ${events.length} events`)), timeoutMs);
    const subscription = observable.subscribe({
      next: (result) => {
        if (result.errors && result.errors.length) {
          clearTimeout(timer);
          reject(new Error(JSON.stringify(result.errors)));
          return;
        }
        events.push(pick(result.data));
      },
      error: (error) => {
        clearTimeout(timer);
        reject(error);
      },
      complete: () => {
        clearTimeout(timer);
        resolve(events);
      },
    });
    return subscription;
  });
}

export const sha256 = async (text) => {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
};

// The operations both clients run (each wraps them in its own `gql`).
export const OPERATIONS = {
  me: 'query Me { me { id email } }',
  threads: `query ProjectThreads($id: ID!, $after: String) {
    project(id: $id) { id threads(first: 2, after: $after) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }
  }`,
  deleteProject: 'mutation Delete($id: ID!) { deleteProject(id: $id) { __typename ... on NotFoundError { code message } } }',
  runEvents: 'subscription Events($id: ID!) { runEvents(runId: $id) { sequence type } }',
};
