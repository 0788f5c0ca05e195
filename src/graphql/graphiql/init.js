// Starts GraphiQL for the gateway. Served as a file (not inline) so the page's
// Content-Security-Policy can forbid inline scripts; the server's settings arrive in the
// page's JSON block (#gateway-config).
//
// - The URL carries the operation (?query=, ?variables=, ?operationName=) and follows the
//   editor, so a link in a ticket reproduces a query; a linked operation runs on load when a
//   token is in the headers.
// - GraphiQL keeps its state in memory only: a token typed into the headers editor is never
//   written to localStorage or sessionStorage (the URL never carries headers).
// - Subscriptions go over graphql-transport-ws; GraphiQL's fetcher sends the headers
//   editor's contents as the connection_init payload, since browsers cannot set WebSocket
//   headers.
(function () {
  'use strict';

  var config = JSON.parse(document.getElementById('gateway-config').textContent);
  var h = React.createElement;

  // The fields both examples show of each row.
  var ROW_FIELDS = `
      time
      action
      resourceType
      resourceTarget
      user {
        username
      }`;

  var EXAMPLE_QUERY = `# Coder's audit trail, newest first, as the token in
# the Headers tab may see it. Run: \u25B6 or Ctrl-Enter.
# Pick fields by clicking: the Explorer, left bar.
# The live tail: the LiveAuditLogs tab.
query RecentAuditLogs {
  auditLogs(limit: 10) {
    count
    auditLogs {${ROW_FIELDS}
      statusCode
    }
  }
}
`;

  var EXAMPLE_SUBSCRIPTION = `# Rows as Coder records them, oldest first,
# until you press \u25A0.
subscription LiveAuditLogs {
  auditLogAdded {
    cursor
    auditLog {${ROW_FIELDS}
    }
  }
}
`;

  // A Storage that forgets everything when the page closes.
  function memoryStorage() {
    var items = new Map();
    return {
      getItem: function (key) {
        return items.has(key) ? items.get(key) : null;
      },
      setItem: function (key, value) {
        items.set(key, String(value));
      },
      removeItem: function (key) {
        items.delete(key);
      },
      clear: function () {
        items.clear();
      },
      key: function (index) {
        var keys = Array.from(items.keys());
        return index < keys.length ? keys[index] : null;
      },
      get length() {
        return items.size;
      },
    };
  }

  var params = new URLSearchParams(window.location.search);
  var linked = params.has('query');
  var current = {
    query: params.get('query'),
    variables: params.get('variables'),
    operationName: params.get('operationName'),
  };

  // Rewrites the address bar (without a navigation) to the operation in the editor.
  function followEditor(changes) {
    Object.assign(current, changes);
    var next = new URLSearchParams();
    ['query', 'variables', 'operationName'].forEach(function (key) {
      var value = current[key];
      if (typeof value === 'string' && value.trim() !== '') {
        next.set(key, value);
      }
    });
    var search = next.toString();
    window.history.replaceState(
      null,
      '',
      window.location.pathname + (search ? '?' + search : '') + window.location.hash,
    );
  }

  function hasToken(headers) {
    try {
      var parsed = JSON.parse(headers || '{}');
      return Object.keys(parsed).some(function (key) {
        var name = key.toLowerCase();
        return (
          (name === 'coder-session-token' || name === 'authorization') &&
          typeof parsed[key] === 'string' &&
          parsed[key].trim() !== ''
        );
      });
    } catch (_) {
      return false;
    }
  }

  // Runs the operation of a link once, as soon as the editors exist.
  function RunLinkedOperation() {
    var execution = GraphiQL.React.useExecutionContext({ nonNull: true });
    var editors = GraphiQL.React.useEditorContext({ nonNull: true });
    var done = React.useRef(false);
    React.useEffect(
      function () {
        if (done.current || !linked || !editors.queryEditor || !editors.headerEditor) {
          return;
        }
        done.current = true;
        if (hasToken(editors.headerEditor.getValue())) {
          execution.run();
        }
      },
      [editors.queryEditor, editors.headerEditor, execution],
    );
    return null;
  }

  var subscriptionUrl =
    (window.location.protocol === 'https:' ? 'wss://' : 'ws://') +
    window.location.host +
    config.endpoint;
  var graphiqlFetcher = GraphiQL.createFetcher({
    url: config.endpoint,
    subscriptionUrl: subscriptionUrl,
    enableIncrementalDelivery: false,
  });

  // GraphiQL's fetcher picks the WebSocket only when it knows the operation's name and
  // document; a linked operation that runs at load may come before the editor has worked
  // them out. The lone operation of a document is the one that runs, so name it here.
  function fetcher(params, options) {
    var document;
    try {
      document = GraphiQL.GraphQL.parse(params.query);
    } catch (_) {
      return graphiqlFetcher(params, options);
    }
    var operations = document.definitions.filter(function (d) {
      return d.kind === 'OperationDefinition';
    });
    var named = Object.assign({}, params);
    if (!named.operationName && operations.length === 1 && operations[0].name) {
      named.operationName = operations[0].name.value;
    }
    return graphiqlFetcher(named, Object.assign({}, options, { documentAST: document }));
  }
  var storage = memoryStorage();
  var plugins = [GraphiQLPluginExplorer.explorerPlugin({ showAttribution: false })];

  function App() {
    // A linked operationName selects the operation until the document is edited; after
    // that GraphiQL picks the operation under the cursor, as usual.
    var state = React.useState(linked ? current.operationName : null);
    var operationName = state[0];
    var setOperationName = state[1];
    var linkedQuery = linked ? current.query : null;
    var props = {
      fetcher: fetcher,
      storage: storage,
      plugins: plugins,
      shouldPersistHeaders: false,
      showPersistHeadersSettings: false,
      headers: config.headers,
      defaultHeaders: config.headers,
      defaultEditorToolsVisibility: 'headers',
      onEditQuery: function (query) {
        if (operationName && query !== linkedQuery) {
          setOperationName(null);
        }
        followEditor({ query: query });
      },
      onEditVariables: function (variables) {
        followEditor({ variables: variables });
      },
      onEditOperationName: function (name) {
        followEditor({ operationName: name });
      },
      onTabChange: function (tabs) {
        var tab = tabs.tabs[tabs.activeTabIndex];
        if (tab) {
          followEditor({
            query: tab.query,
            variables: tab.variables,
            operationName: tab.operationName,
          });
        }
      },
    };
    if (operationName) {
      props.operationName = operationName;
    }
    if (linked) {
      props.query = current.query;
      props.variables = current.variables || undefined;
    } else {
      props.defaultTabs = [{ query: EXAMPLE_QUERY }, { query: EXAMPLE_SUBSCRIPTION }];
    }
    return h(
      GraphiQL,
      props,
      h(GraphiQL.Logo, null, 'Coder audit', h(RunLinkedOperation)),
    );
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(h(App));
})();
