//! Turns a validated operation into a plan over the gateway's own types: every field known
//! by name once, fragments and inline fragments flattened, `@skip`/`@include` kept as
//! conditions to resolve per request, and fields with the same response key merged in the
//! order they first appear (the specification's `CollectFields`).
//!
//! The planner covers queries over the schema's object fields and `__typename`. Anything
//! else (introspection, a subscription sent over HTTP, a directive it does not know, a
//! field added later) makes it decline, and the operation stays with async-graphql.

use std::sync::Arc;

use async_graphql::{
    Name, Positioned,
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
        Selection, SelectionSet, Type,
    },
};
use async_graphql_value::Value;

use super::{
    resolve::{self, Selection as ResolvedSelection},
    tree::{Conditions, FieldNode, Flag, Node, NodeKind, Parent},
};
use crate::graphql::types::included;

/// A declared variable, as the plan checks the values it is given.
#[derive(Debug)]
pub(super) struct VariableDefinition {
    pub(super) name: Name,
    pub(super) ty: Type,
    pub(super) default: Option<async_graphql::Value>,
}

/// A compiled query operation.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(super) variables: Vec<VariableDefinition>,
    pub(super) root: Vec<Node>,
    /// Whether any selection has conditions; without, the resolved selection is the same
    /// for every request and is kept (`resolved`).
    pub(super) conditional: bool,
    pub(super) resolved: Option<ResolvedSelection>,
    /// Fields as written, fragments inlined: what the plan's size grows with.
    pub(super) fields: usize,
}

/// Compiles the operation `operation_name` picks from `document` (which async-graphql has
/// already accepted); `None` when the planner does not cover it.
pub(super) fn compile(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<Plan> {
    let operation = operation(document, operation_name)?;
    let OperationDefinition {
        ty,
        variable_definitions,
        directives,
        selection_set,
    } = &operation.node;
    if *ty != OperationType::Query || !directives.is_empty() {
        return None;
    }
    let mut compiler = Compiler {
        document,
        conditional: false,
        fragment_depth: 0,
        fields: 0,
    };
    let root = compiler.selection_set(&selection_set.node, Parent::Query)?;
    let variables = variable_definitions
        .iter()
        .map(|definition| VariableDefinition {
            name: definition.node.name.node.clone(),
            ty: definition.node.var_type.node.clone(),
            default: definition.node.default_value().cloned(),
        })
        .collect();
    let mut plan = Plan {
        variables,
        root,
        conditional: compiler.conditional,
        resolved: None,
        fields: compiler.fields,
    };
    if !plan.conditional {
        plan.resolved = Some(resolve::selection(&plan.root, &|_| None)?);
    }
    Some(plan)
}

/// The operation a request names, as async-graphql picks it.
pub(super) fn operation<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        _ => None,
    }
}

/// The root's response keys in the order the operation selects them, `@skip`/`@include`
/// read as async-graphql reads them. async-graphql resolves root fields concurrently and
/// answers them in the order they finish (its issue #612); its answers are put back in this
/// order.
pub(in crate::graphql) fn root_order(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &async_graphql::Variables,
) -> Option<Vec<Name>> {
    fn walk(
        document: &ExecutableDocument,
        set: &SelectionSet,
        variables: &async_graphql::Variables,
        depth: usize,
        keys: &mut Vec<Name>,
    ) {
        for item in &set.items {
            if !included(item.node.directives(), variables) || depth > 64 {
                continue;
            }
            let nested = match &item.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                    continue;
                }
                Selection::InlineFragment(fragment) => &fragment.node.selection_set.node,
                Selection::FragmentSpread(spread) => {
                    match document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => &fragment.node.selection_set.node,
                        None => continue,
                    }
                }
            };
            walk(document, nested, variables, depth + 1, keys);
        }
    }
    let operation = operation(document, operation_name)?;
    let mut keys = Vec::new();
    walk(
        document,
        &operation.node.selection_set.node,
        variables,
        0,
        &mut keys,
    );
    Some(keys)
}

struct Compiler<'d> {
    document: &'d ExecutableDocument,
    conditional: bool,
    /// Validation has ruled out fragment cycles; this bounds the walk regardless.
    fragment_depth: usize,
    fields: usize,
}

impl Compiler<'_> {
    fn selection_set(&mut self, set: &SelectionSet, parent: Parent) -> Option<Vec<Node>> {
        set.items
            .iter()
            .map(|item| self.selection(&item.node, parent))
            .collect()
    }

    fn selection(&mut self, selection: &Selection, parent: Parent) -> Option<Node> {
        let conditions = self.conditions(selection.directives())?;
        let kind = match selection {
            Selection::Field(positioned) => {
                let field = &positioned.node;
                let (id, child) = parent.field(&field.name.node)?;
                self.fields += 1;
                let children = match child {
                    Some(child) => self.selection_set(&field.selection_set.node, child)?,
                    None => Vec::new(),
                };
                NodeKind::Field(FieldNode {
                    key: Arc::from(field.response_key().node.as_str()),
                    field: id,
                    parent,
                    pos: positioned.pos,
                    arguments: field
                        .arguments
                        .iter()
                        .map(|(name, value)| (name.node.clone(), value.clone()))
                        .collect(),
                    children,
                })
            }
            Selection::InlineFragment(fragment) => {
                let fragment = &fragment.node;
                if let Some(on) = &fragment.type_condition
                    && on.node.on.node != parent.type_name()
                {
                    return None;
                }
                NodeKind::Group(self.selection_set(&fragment.selection_set.node, parent)?)
            }
            Selection::FragmentSpread(spread) => {
                let definition = self
                    .document
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                let definition = &definition.node;
                if definition.type_condition.node.on.node != parent.type_name()
                    || !definition.directives.is_empty()
                    || self.fragment_depth > 64
                {
                    return None;
                }
                self.fragment_depth += 1;
                let children = self.selection_set(&definition.selection_set.node, parent);
                self.fragment_depth -= 1;
                NodeKind::Group(children?)
            }
        };
        Some(Node { conditions, kind })
    }

    fn conditions(&mut self, directives: &[Positioned<Directive>]) -> Option<Conditions> {
        let mut conditions = Conditions::default();
        for directive in directives {
            let directive = &directive.node;
            let [(name, value)] = directive.arguments.as_slice() else {
                return None;
            };
            if name.node != "if" {
                return None;
            }
            let flag = match &value.node {
                Value::Boolean(b) => Flag::Literal(*b),
                Value::Variable(name) => Flag::Variable(name.clone()),
                _ => return None,
            };
            match directive.name.node.as_str() {
                "skip" => conditions.skip.push(flag),
                "include" => conditions.include.push(flag),
                _ => return None,
            }
        }
        self.conditional |= !conditions.is_empty();
        Some(conditions)
    }
}
