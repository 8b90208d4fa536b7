//! The `where` clauses the fake's query understands: `1=1`, or
//! comparisons of a field with a number or a quoted string (`=`, `<>`, `<`,
//! `<=`, `>`, `>=`), joined by `AND`.

use std::cmp::Ordering;

use super::Park;

/// A value of a field, or a literal in a `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Number(i64),
    Text(String),
}

pub(super) fn attribute(park: &Park, field: &str) -> Option<Literal> {
    Some(match field.to_ascii_uppercase().as_str() {
        "OBJECTID" => Literal::Number(park.object_id),
        "NAME" => Literal::Text(park.name.to_owned()),
        "VISITORS" => Literal::Number(park.visitors),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
        }
    }
}

/// One `FIELD OP LITERAL` of a `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Comparison {
    field: String,
    op: Op,
    value: Literal,
}

/// A `where` clause: every comparison must hold (`1=1` is none at all).
pub(super) fn parse_where(clause: &str) -> Result<Vec<Comparison>, String> {
    let invalid = || format!("'where' parameter is invalid: {clause}");
    let mut comparisons = Vec::new();
    for part in split_and(clause) {
        let part = part.trim();
        if part.replace(' ', "") == "1=1" {
            continue;
        }
        let field_end = part
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(invalid)?;
        let (field, rest) = part.split_at(field_end);
        if field.is_empty() || field.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let rest = rest.trim_start();
        let (op, rest) = [
            ("<>", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|r| (op, r.trim())))
        .ok_or_else(invalid)?;
        let value = if let Some(quoted) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\''))
        {
            if quoted.replace("''", "").contains('\'') {
                return Err(invalid());
            }
            Literal::Text(quoted.replace("''", "'"))
        } else {
            Literal::Number(rest.parse().map_err(|_| invalid())?)
        };
        if attribute(&super::PARKS[0], field).is_none() {
            return Err(format!("Invalid field: {field}"));
        }
        comparisons.push(Comparison {
            field: field.to_owned(),
            op,
            value,
        });
    }
    Ok(comparisons)
}

/// `clause` split at each ` AND ` (any case) outside quotes.
fn split_and(clause: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let bytes = clause.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted
            && clause
                .get(i..i + 5)
                .is_some_and(|s| s.eq_ignore_ascii_case(" and "))
        {
            parts.push(&clause[start..i]);
            start = i + 5;
            i += 5;
            continue;
        }
        i += 1;
    }
    parts.push(&clause[start..]);
    parts
}

pub(super) fn matches(park: &Park, comparisons: &[Comparison]) -> Result<bool, String> {
    for c in comparisons {
        let ordering = match (attribute(park, &c.field), &c.value) {
            (Some(Literal::Number(a)), Literal::Number(b)) => a.cmp(b),
            (Some(Literal::Text(a)), Literal::Text(b)) => a.as_str().cmp(b.as_str()),
            _ => return Err(format!("'where' compares {} with a wrong type", c.field)),
        };
        if !c.op.holds(ordering) {
            return Ok(false);
        }
    }
    Ok(true)
}
