// Apollo Client's own `relayStylePagination` pages `auditLogs` through the gateway's Relay
// connection, `fetchMore` after `fetchMore`, until `hasNextPage` is false; the cache's
// merged list must hold every row of the trail once, newest first, and match a plain
// export of the same trail.
//
// node apollo-relay.mjs <graphql url> <token> <ndjson export url>
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { ApolloClient, InMemoryCache, HttpLink, gql } = require("@apollo/client/core");
const { relayStylePagination } = require("@apollo/client/utilities");
const { loadErrorMessages, loadDevMessages } = require("@apollo/client/dev");

// Apollo's warnings in words, not as numbered links.
loadDevMessages();
loadErrorMessages();

const [url, token, exportUrl] = process.argv.slice(2);
if (!url || !token || !exportUrl) {
  console.error("usage: node apollo-relay.mjs <graphql url> <token> <ndjson export url>");
  process.exit(2);
}

const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: { "Coder-Session-Token": token } }),
  cache: new InMemoryCache({
    typePolicies: {
      Query: { fields: { auditLogs: relayStylePagination(["q", "filter"]) } },
    },
  }),
});

const TRAIL = gql`
  query Trail($q: String, $after: String) {
    auditLogs(q: $q, limit: 37, after: $after) {
      count
      edges {
        cursor
        node {
          id
          time
          action
        }
      }
      pageInfo {
        endCursor
        hasNextPage
      }
    }
  }
`;

// The demo records new rows as it runs: both sides read the trail up to yesterday.
const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const q = `date_to:${yesterday}`;

const watched = client.watchQuery({ query: TRAIL, variables: { q } });
let subscription;
let result = await new Promise((resolve, reject) => {
  subscription = watched.subscribe({
    next: (current) => {
      if (!current.loading) {
        resolve(current);
      }
    },
    error: reject,
  });
});
let pages = 1;
while (result.data.auditLogs.pageInfo.hasNextPage) {
  await watched.fetchMore({
    variables: { after: result.data.auditLogs.pageInfo.endCursor },
  });
  result = watched.getCurrentResult();
  pages += 1;
  if (pages > 1000) {
    throw new Error("paging does not end");
  }
}
subscription.unsubscribe();

const ids = result.data.auditLogs.edges.map((edge) => edge.node.id);
const unique = new Set(ids);
if (unique.size !== ids.length) {
  throw new Error(`a row came twice: ${ids.length} edges, ${unique.size} rows`);
}
const times = result.data.auditLogs.edges.map((edge) => Date.parse(edge.node.time));
for (let i = 1; i < times.length; i += 1) {
  if (times[i] > times[i - 1]) {
    throw new Error(`not newest first at edge ${i}`);
  }
}

const exported = await fetch(`${exportUrl}?q=${encodeURIComponent(q)}`, { headers: { "Coder-Session-Token": token } });
if (!exported.ok) {
  throw new Error(`the export answered ${exported.status}`);
}
const expected = (await exported.text())
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line).id);
const missing = expected.filter((id) => !unique.has(id));
if (missing.length > 0 || expected.length !== ids.length) {
  throw new Error(
    `Apollo's merged list holds ${ids.length} rows, the export ${expected.length}; missing ${missing.slice(0, 3)}`,
  );
}
console.log(
  `Apollo Client relayStylePagination: ${pages} pages merged into ${ids.length} rows, each once, newest first`,
);
