// The GraphQL-over-HTTP conformance audits of the npm `graphql-http` package, against a running server.
//
//   node audit.mjs <graphql url>   runs every audit; prints a JSON array of {id, name, status, reason}
//   node audit.mjs --list          prints the audits' {id, name} without sending a request (pytest
//                                  parametrizes by them at collection time)
//
// status is "ok", or "error" (a MUST audit failed), "warn" (SHOULD) or "notice" (MAY). A failure adds reason
// plus the response's status, content type and body (truncated), so a failing test shows what the server
// answered. Exit code 0 whatever the results (judging them is the Python test's job); any other exit code
// means the audit itself could not run.
import { auditServer, serverAudits } from 'graphql-http';

const [arg] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value, null, 1) + '\n');

if (!arg) {
  process.stderr.write('usage: node audit.mjs <graphql url> | --list\n');
  process.exit(64);
}

async function describe(result) {
  const out = { id: result.id, name: result.name, status: result.status };
  if (result.status === 'ok') return out;
  out.reason = result.reason;
  try {
    out.responseStatus = result.response.status;
    out.responseContentType = result.response.headers.get('content-type');
    const body = await result.response.text();
    out.responseBody = body.length > 500 ? body.slice(0, 500) + '...' : body;
  } catch {
    // the audit may have read the body already
  }
  return out;
}

if (arg === '--list') {
  print(serverAudits({ url: 'http://127.0.0.1/graphql' }).map(({ id, name }) => ({ id, name })));
} else {
  const results = await auditServer({ url: arg });
  print(await Promise.all(results.map(describe)));
}
