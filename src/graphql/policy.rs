//! Rules on the document itself, checked once it is parsed and before anything runs: the
//! depth limit, and `--disable-introspection` as a stated policy.
//!
//! - Depth counts fields through fragments, but not inside `__schema` and `__type`: our
//!   schema has no cycles, so only introspection can nest deeply, and every tool's
//!   introspection query (`GraphiQL`'s is 15 deep) must pass any sensible limit. GraphQL
//!   Armor and Hive exempt introspection the same way. Its cost stays bounded by the
//!   complexity limit, which still counts it.
//! - With introspection disabled, a document asking for `__schema` or `__type` is refused
//!   with `INTROSPECTION_DISABLED` and a message naming the flag, as Apollo Router does;
//!   async-graphql's own switch answers a silent `null`, which clients (`GraphiQL` among
//!   them) read as a broken server. `__typename` is not schema introspection and works.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    ErrorExtensionValues, ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// The message and code of a document nested too deep (async-graphql's message, kept).
const TOO_DEEP: &str = "Query is nested too deep.";
const TOO_DEEP_CODE: &str = "GRAPHQL_DEPTH_LIMIT";
const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";

/// The rules, configured once.
#[derive(Debug, Clone, Copy)]
pub(super) struct DocumentPolicy {
    pub max_depth: usize,
    pub introspection: bool,
}

impl ExtensionFactory for DocumentPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentPolicy {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if !self.introspection
            && let Some(field) = introspection_field(&document)
        {
            return Err(error(
                format!(
                    "GraphQL introspection is disabled on this gateway \
                     (--disable-introspection); the document asks for {field}"
                ),
                INTROSPECTION_DISABLED,
            ));
        }
        if Depth::new(&document).max() > self.max_depth {
            return Err(error(TOO_DEEP.to_owned(), TOO_DEEP_CODE));
        }
        Ok(document)
    }
}

fn error(message: String, code: &str) -> ServerError {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    let mut error = ServerError::new(message, None);
    error.extensions = Some(extensions);
    error
}

fn is_introspection(name: &str) -> bool {
    matches!(name, "__schema" | "__type")
}

/// The first `__schema` or `__type` field anywhere in the document's operations and
/// fragments.
fn introspection_field(document: &ExecutableDocument) -> Option<String> {
    fn find(set: &SelectionSet) -> Option<String> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(field) if is_introspection(field.node.name.node.as_str()) => {
                Some(field.node.name.node.to_string())
            }
            Selection::Field(field) => find(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => find(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => None,
        })
    }
    document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|f| &f.node.selection_set.node),
        )
        .find_map(find)
}

/// The deepest field nesting of any operation, fragments spread in place. Each fragment's
/// depth is computed once, so a document of fragments that spread each other many times
/// costs its size, not the size of its expansion; a cycle (which validation refuses later)
/// counts as no deeper.
struct Depth<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Option<usize>>,
}

impl<'a> Depth<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Self {
            document,
            fragments: HashMap::new(),
        }
    }

    fn max(&mut self) -> usize {
        let document = self.document;
        document
            .operations
            .iter()
            .map(|(_, operation)| self.of(&operation.node.selection_set.node))
            .max()
            .unwrap_or_default()
    }

    fn of(&mut self, set: &'a SelectionSet) -> usize {
        let mut deepest = 0;
        for item in &set.items {
            let depth = match &item.node {
                Selection::Field(field) if is_introspection(field.node.name.node.as_str()) => 1,
                Selection::Field(field) => 1 + self.of(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => self.of(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        match self.fragments.get(name) {
            Some(Some(depth)) => return *depth,
            // On the current path: a cycle.
            Some(None) => return 0,
            None => {}
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        self.fragments.insert(name, None);
        let depth = self.of(&fragment.node.selection_set.node);
        self.fragments.insert(name, Some(depth));
        depth
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn document(query: &str) -> ExecutableDocument {
        parse_query(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    fn depth(query: &str) -> usize {
        Depth::new(&document(query)).max()
    }

    #[test]
    fn introspection_is_found_wherever_it_hides() {
        let finds = |query: &str| introspection_field(&document(query));
        assert_eq!(
            finds("{ __schema { types { name } } }").as_deref(),
            Some("__schema")
        );
        assert_eq!(
            finds("{ t: __type(name: \"X\") { name } }").as_deref(),
            Some("__type")
        );
        assert_eq!(
            finds("query A { __typename } query B { ...F } fragment F on Query { __schema { queryType { name } } }")
                .as_deref(),
            Some("__schema")
        );
        assert_eq!(
            finds(
                "{ ... on Query { ... @include(if: true) { __type(name: \"Query\") { name } } } }"
            )
            .as_deref(),
            Some("__type")
        );
        assert_eq!(
            finds("{ __typename auditLogs(limit: 1) { __typename } }"),
            None
        );
    }

    #[test]
    fn depth_counts_fields_through_fragments_but_not_into_introspection() {
        assert_eq!(depth("{ a }"), 1);
        assert_eq!(depth("{ a { b { c } } d }"), 3);
        assert_eq!(
            depth("{ a { ...F } } fragment F on T { b { ... on T { c { d } } } }"),
            4
        );
        assert_eq!(depth("query A { a } query B { a { b } }"), 2);
        assert_eq!(
            depth("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }"),
            1
        );
        assert_eq!(
            depth("{ a { b { __type(name: \"X\") { ofType { name } } } } }"),
            3
        );
    }

    #[test]
    fn fragment_cycles_and_fanout_terminate() {
        assert_eq!(
            depth("{ ...A } fragment A on Q { a { ...B } } fragment B on Q { b { ...A } }"),
            2
        );
        // Each fragment spreads the next twice: 2^40 fields expanded, 81 written.
        let fanout = (0..40)
            .map(|i| {
                format!(
                    " fragment F{i} on Q {{ x {{ ...F{n} }} y {{ ...F{n} }} }}",
                    n = i + 1
                )
            })
            .fold(String::from("{ ...F0 }"), |document, fragment| {
                document + &fragment
            })
            + " fragment F40 on Q { z }";
        assert_eq!(depth(&fanout), 41);
    }
}
