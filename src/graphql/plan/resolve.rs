//! Resolves a plan's conditions for one request: the selections `@skip`/`@include` leave in,
//! with fields of the same response key merged where the key first appears. A plan without
//! conditions is resolved once, when it is compiled.

use std::sync::Arc;

use async_graphql::{Name, Pos, Positioned};
use async_graphql_value::Value;

use super::tree::{Conditions, Field, FieldNode, Flag, Node, NodeKind, Parent};

/// Fields in response order.
pub(crate) type Selection = Vec<Resolved>;

/// One response key and what it is.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(super) key: Arc<str>,
    /// `"key":`, ready to write (names are `[_A-Za-z][_0-9A-Za-z]*`: nothing to escape).
    pub(super) prefix: Box<[u8]>,
    pub(super) field: Field,
    pub(super) parent: Parent,
    pub(super) pos: Pos,
    pub(super) arguments: Arc<[(Name, Positioned<Value>)]>,
    pub(super) children: Selection,
}

/// The selection `nodes` make when each flag has the value `flag` gives it; `None` when a
/// variable flag has no boolean value (the reference executor then reports it).
pub(super) fn selection(nodes: &[Node], flag: &dyn Fn(&Name) -> Option<bool>) -> Option<Selection> {
    let mut groups = Vec::new();
    collect(nodes, flag, &mut groups)?;
    build(groups, flag)
}

fn build(groups: Vec<Vec<&FieldNode>>, flag: &dyn Fn(&Name) -> Option<bool>) -> Option<Selection> {
    groups
        .into_iter()
        .map(|sources| {
            let first = sources.first()?;
            let mut children = Vec::new();
            collect(&first.children, flag, &mut children)?;
            // async-graphql resolves each occurrence of a key on its own and merges the
            // values: an object whose fields are all skipped is null, and a null first
            // occurrence takes no merge. An empty selection writes that null.
            if !children.is_empty() {
                for source in &sources[1..] {
                    collect(&source.children, flag, &mut children)?;
                }
            }
            Some(Resolved {
                key: first.key.clone(),
                prefix: format!("\"{}\":", first.key).into_bytes().into(),
                field: first.field,
                parent: first.parent,
                pos: first.pos,
                arguments: first.arguments.clone(),
                children: build(children, flag)?,
            })
        })
        .collect()
}

/// `CollectFields`: the included fields of `nodes`, grouped by response key in the order
/// each key first appears.
fn collect<'n>(
    nodes: &'n [Node],
    flag: &dyn Fn(&Name) -> Option<bool>,
    groups: &mut Vec<Vec<&'n FieldNode>>,
) -> Option<()> {
    for node in nodes {
        if !included(&node.conditions, flag)? {
            continue;
        }
        match &node.kind {
            NodeKind::Group(children) => collect(children, flag, groups)?,
            NodeKind::Field(field) => {
                match groups
                    .iter_mut()
                    .find(|g| g.first().is_some_and(|f| f.key == field.key))
                {
                    Some(group) => group.push(field),
                    None => groups.push(vec![field]),
                }
            }
        }
    }
    Some(())
}

/// Whether a selection with `conditions` is in; every flag is read, so that one without a
/// boolean value sends the request to the reference executor whatever the others say.
fn included(conditions: &Conditions, flag: &dyn Fn(&Name) -> Option<bool>) -> Option<bool> {
    let value = |f: &Flag| match f {
        Flag::Literal(b) => Some(*b),
        Flag::Variable(name) => flag(name),
    };
    let mut included = true;
    for skip in &conditions.skip {
        included &= !value(skip)?;
    }
    for include in &conditions.include {
        included &= value(include)?;
    }
    Some(included)
}
