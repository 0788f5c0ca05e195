// Runs graphql-http's GraphQL-over-HTTP audit suite against a running gateway.
// Usage: node graphql-http-audit.mjs http://127.0.0.1:PORT/graphql
// Exits non-zero on any failed MUST or SHOULD audit; MAY findings are printed only.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http-audit.mjs <graphql url>');
  process.exit(2);
}

let passed = 0;
let failed = 0;
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  const level = audit.name.split(' ')[0];
  if (result.status === 'ok') {
    passed += 1;
    continue;
  }
  const blocking = level === 'MUST' || level === 'SHOULD';
  if (blocking) failed += 1;
  let body = '';
  try {
    body = await result.response.text();
  } catch {
    // The body was already read by the audit.
  }
  console.log(`${blocking ? 'FAIL' : 'note'} [${audit.id}] ${audit.name}: ${result.reason}${body ? ` (body: ${body.slice(0, 200)})` : ''}`);
}
console.log(`audit: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
