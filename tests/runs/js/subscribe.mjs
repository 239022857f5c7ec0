// A real graphql-ws client (the npm `graphql-ws` package, graphql-transport-ws protocol) for the run tests.
//
//   node subscribe.mjs <ws url> <access token> <run id> <after>
//
// Authenticates in connection_init ({Authorization: "Bearer ..."}), subscribes to runEvents and prints one
// JSON line per event; then {"complete": true} when the server completes the subscription, or
// {"error": ...} (exit code 2) when it fails. SUBSCRIBE_TIMEOUT_MS bounds the whole run (exit code 3).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, runId, after = '0'] = process.argv.slice(2);
const query = 'subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }';
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const timer = setTimeout(() => {
  print({ error: 'timeout' });
  process.exit(3);
}, Number(process.env.SUBSCRIBE_TIMEOUT_MS || 30000));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
  lazy: true,
  on: { connected: () => print({ connected: true }) },
});

const finish = (code) => {
  clearTimeout(timer);
  process.exitCode = code;
  client.dispose();
};

client.subscribe(
  { query, variables: { id: runId, after: Number(after) } },
  {
    next: (result) => print(result.errors ? { errors: result.errors } : result.data.runEvents),
    error: (err) => {
      // A GraphQL error list, or the CloseEvent of a refused/dropped socket.
      const detail = Array.isArray(err) ? { errors: err } : { error: String(err?.reason || err?.message || err), code: err?.code };
      print(detail);
      finish(2);
    },
    complete: () => {
      print({ complete: true });
      finish(0);
    },
  },
);
