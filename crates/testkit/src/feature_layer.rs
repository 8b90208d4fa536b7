//! The one feature layer the fake serves, [`FEATURE_SERVICE`]`/0`: three
//! parks as points, with the layer's JSON and a `query` operation that a
//! real client (the ArcGIS Maps SDK for JavaScript's `FeatureLayer`) can load
//! and query. Every server answers it under `rest/services/`, and the portal
//! under its hosted services ([`FakePortal::hosted_feature_layer_url`]),
//! each behind its own tokens.
//!
//! The query understands what clients send for attribute queries: `where`
//! (`1=1`, or comparisons of a field with a number or a quoted string,
//! joined by `AND`), `objectIds`, `outFields`, `returnGeometry`,
//! `returnCountOnly`, `returnIdsOnly`, `resultOffset`, `resultRecordCount`
//! and `outSR` (4326, or Web Mercator as 3857 or 102100), with `f=json`.
//! Anything else it cannot honour is refused in ArcGIS's shape (code 400)
//! rather than answered wrongly.
//!
//! [`FakePortal::hosted_feature_layer_url`]: crate::FakePortal::hosted_feature_layer_url

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::wire::{self, Params};

/// The feature service's path under `rest/services/`; its layer 0 is the parks.
pub const FEATURE_SERVICE: &str = "Testkit/Parks/FeatureServer";

/// The layer's name, as its JSON gives it.
pub const FEATURE_LAYER_NAME: &str = "Parks";

/// One park of the layer: a point in WGS 84 with two attributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Park {
    /// `OBJECTID`.
    pub object_id: i64,
    /// `NAME`.
    pub name: &'static str,
    /// `VISITORS`: visitors a year.
    pub visitors: i64,
    /// Longitude, degrees.
    pub x: f64,
    /// Latitude, degrees.
    pub y: f64,
}

/// The layer's features, in object id order.
pub const PARKS: &[Park] = &[
    Park {
        object_id: 1,
        name: "Prospect Park",
        visitors: 120_000,
        x: -117.1825,
        y: 34.0489,
    },
    Park {
        object_id: 2,
        name: "Sylvan Park",
        visitors: 45_000,
        x: -117.1710,
        y: 34.0622,
    },
    Park {
        object_id: 3,
        name: "Ford Park",
        visitors: 80_000,
        x: -117.1495,
        y: 34.0388,
    },
];

/// The layer's fields, in order: (name, ArcGIS type, alias).
pub const FEATURE_LAYER_FIELDS: &[(&str, &str, &str)] = &[
    ("OBJECTID", "esriFieldTypeOID", "OBJECTID"),
    ("NAME", "esriFieldTypeString", "Name"),
    ("VISITORS", "esriFieldTypeInteger", "Visitors"),
];

/// Where a request under `rest/services/` is, as far as the feature service goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `{FEATURE_SERVICE}`: the service's description.
    Service,
    /// `{FEATURE_SERVICE}/0`: the layer's JSON.
    Layer,
    /// `{FEATURE_SERVICE}/0/query`.
    Query,
    /// Another layer or operation of the feature service.
    Missing,
}

/// Which part of the feature service `path` (after `rest/services/`, no
/// leading slash) is; `None` for paths outside it.
pub(crate) fn resource(path: &str) -> Option<Resource> {
    let path = path.trim_matches('/');
    let rest = path.strip_prefix(FEATURE_SERVICE)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(match rest.trim_start_matches('/') {
        "" => Resource::Service,
        "0" => Resource::Layer,
        "0/query" => Resource::Query,
        _ => Resource::Missing,
    })
}

/// The answer for `resource`, once the caller's token was accepted.
pub(crate) fn answer(resource: Resource, params: &Params) -> Value {
    match resource {
        Resource::Service => service_json(),
        Resource::Layer => layer_json(),
        Resource::Query => query(params).unwrap_or_else(|detail| {
            wire::rest_error(400, "Unable to complete operation.", None, &[&detail])
        }),
        Resource::Missing => wire::rest_error(400, "Invalid URL", None, &["Invalid URL"]),
    }
}

fn wgs84() -> Value {
    json!({"wkid": 4326, "latestWkid": 4326})
}

fn extent() -> Value {
    let (mut xmin, mut ymin, mut xmax, mut ymax) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in PARKS {
        xmin = xmin.min(p.x);
        ymin = ymin.min(p.y);
        xmax = xmax.max(p.x);
        ymax = ymax.max(p.y);
    }
    json!({"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": wgs84()})
}

fn fields_json() -> Vec<Value> {
    FEATURE_LAYER_FIELDS
        .iter()
        .map(|(name, kind, alias)| {
            let mut field = json!({
                "name": name, "type": kind, "alias": alias, "sqlType": "sqlTypeOther",
                "nullable": *kind != "esriFieldTypeOID", "editable": *kind != "esriFieldTypeOID",
                "domain": null, "defaultValue": null,
            });
            if *kind == "esriFieldTypeString"
                && let Some(obj) = field.as_object_mut()
            {
                obj.insert("length".into(), 64.into());
            }
            field
        })
        .collect()
}

fn service_json() -> Value {
    json!({
        "currentVersion": 11.3,
        "serviceDescription": "The testkit's parks",
        "hasVersionedData": false,
        "supportsDisconnectedEditing": false,
        "supportedQueryFormats": "JSON",
        "maxRecordCount": 2000,
        "capabilities": "Query",
        "spatialReference": wgs84(),
        "initialExtent": extent(),
        "fullExtent": extent(),
        "units": "esriDecimalDegrees",
        "layers": [{
            "id": 0, "name": FEATURE_LAYER_NAME, "parentLayerId": -1, "defaultVisibility": true,
            "subLayerIds": null, "minScale": 0, "maxScale": 0, "geometryType": "esriGeometryPoint",
        }],
        "tables": [],
    })
}

fn drawing_info() -> Value {
    json!({
        "renderer": {
            "type": "simple",
            "symbol": {
                "type": "esriSMS", "style": "esriSMSCircle", "color": [0, 112, 255, 255],
                "size": 8, "angle": 0, "xoffset": 0, "yoffset": 0,
                "outline": {"color": [255, 255, 255, 255], "width": 1},
            },
        },
        "transparency": 0,
        "labelingInfo": null,
    })
}

fn advanced_query_capabilities() -> Value {
    json!({
        "useStandardizedQueries": true,
        "supportsStatistics": false,
        "supportsOrderBy": false,
        "supportsDistinct": false,
        "supportsPagination": true,
        "supportsTrueCurve": false,
        "supportsReturningQueryExtent": false,
        "supportsQueryWithDistance": false,
        "supportsSqlExpression": false,
    })
}

fn layer_json() -> Value {
    json!({
        "currentVersion": 11.3,
        "id": 0,
        "name": FEATURE_LAYER_NAME,
        "type": "Feature Layer",
        "description": "Three parks, served by arcgis-auth-testkit",
        "copyrightText": "",
        "defaultVisibility": true,
        "geometryType": "esriGeometryPoint",
        "sourceSpatialReference": wgs84(),
        "extent": extent(),
        "minScale": 0,
        "maxScale": 0,
        "drawingInfo": drawing_info(),
        "hasM": false,
        "hasZ": false,
        "hasAttachments": false,
        "htmlPopupType": "esriServerHTMLPopupTypeNone",
        "objectIdField": "OBJECTID",
        "globalIdField": "",
        "displayField": "NAME",
        "typeIdField": "",
        "fields": fields_json(),
        "types": [],
        "templates": [],
        "relationships": [],
        "maxRecordCount": 2000,
        "standardMaxRecordCount": 2000,
        "supportedQueryFormats": "JSON",
        "capabilities": "Query",
        "useStandardizedQueries": true,
        "supportsAdvancedQueries": false,
        "supportsStatistics": false,
        "advancedQueryCapabilities": advanced_query_capabilities(),
    })
}

/// A value of a field, or a literal in a `where` clause.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(i64),
    Text(String),
}

fn attribute(park: &Park, field: &str) -> Option<Literal> {
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
struct Comparison {
    field: String,
    op: Op,
    value: Literal,
}

/// A `where` clause: every comparison must hold (`1=1` is none at all).
fn parse_where(clause: &str) -> Result<Vec<Comparison>, String> {
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
        if attribute(&PARKS[0], field).is_none() {
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

fn matches(park: &Park, comparisons: &[Comparison]) -> Result<bool, String> {
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

fn flag(params: &Params, name: &str, default: bool) -> Result<bool, String> {
    match params.get(name).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(format!("'{name}' must be true or false")),
    }
}

fn number(params: &Params, name: &str) -> Result<Option<usize>, String> {
    params
        .get(name)
        .map(|v| v.parse().map_err(|_| format!("'{name}' must be a number")))
        .transpose()
}

/// The spatial reference asked for in `outSR` (`4326`, `{"wkid":4326}`):
/// whether it is Web Mercator.
fn web_mercator(params: &Params) -> Result<bool, String> {
    let Some(out) = params.get("outSR") else {
        return Ok(false);
    };
    let wkid = match serde_json::from_str::<Value>(out) {
        Ok(Value::Number(n)) => n.as_i64(),
        Ok(Value::Object(o)) => o
            .get("latestWkid")
            .or_else(|| o.get("wkid"))
            .and_then(Value::as_i64),
        _ => None,
    };
    match wkid {
        Some(4326) => Ok(false),
        Some(3857 | 102_100 | 102_113 | 900_913) => Ok(true),
        _ => Err(format!("'outSR' {out} is not supported by the testkit")),
    }
}

/// A WGS 84 point in Web Mercator metres.
fn to_web_mercator(x: f64, y: f64) -> (f64, f64) {
    const RADIUS: f64 = 6_378_137.0;
    let mx = x.to_radians() * RADIUS;
    let my = (std::f64::consts::FRAC_PI_4 + y.to_radians() / 2.0)
        .tan()
        .ln()
        * RADIUS;
    (mx, my)
}

fn query(params: &Params) -> Result<Value, String> {
    if !matches!(params.get("f"), Some("json" | "pjson")) {
        return Err("only f=json is served by the testkit".into());
    }
    let object_ids: Option<Vec<i64>> = params
        .get("objectIds")
        .map(|ids| {
            ids.split(',')
                .map(|id| {
                    id.trim()
                        .parse()
                        .map_err(|_| "'objectIds' is invalid".to_owned())
                })
                .collect()
        })
        .transpose()?;
    let clause = match (params.get("where"), &object_ids) {
        (Some(w), _) => w,
        (None, Some(_)) => "1=1",
        (None, None) => return Err("'where' parameter not specified".into()),
    };
    let comparisons = parse_where(clause)?;
    let mut selected = Vec::new();
    for park in PARKS {
        let by_id = object_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&park.object_id));
        if by_id && matches(park, &comparisons)? {
            selected.push(park);
        }
    }
    if flag(params, "returnCountOnly", false)? {
        return Ok(json!({"count": selected.len()}));
    }
    if flag(params, "returnIdsOnly", false)? {
        let ids: Vec<i64> = selected.iter().map(|p| p.object_id).collect();
        return Ok(json!({"objectIdFieldName": "OBJECTID", "objectIds": ids}));
    }
    let offset = number(params, "resultOffset")?.unwrap_or(0);
    let count = number(params, "resultRecordCount")?.unwrap_or(usize::MAX);
    let total = selected.len();
    let page: Vec<&Park> = selected.into_iter().skip(offset).take(count).collect();
    let exceeded = offset.saturating_add(page.len()) < total;

    let out_fields: Vec<&str> = match params.get("outFields").map(str::trim) {
        None | Some("") => vec!["OBJECTID"],
        Some("*") => FEATURE_LAYER_FIELDS.iter().map(|f| f.0).collect(),
        Some(list) => list.split(',').map(str::trim).collect(),
    };
    let mut names = Vec::new();
    for asked in &out_fields {
        let Some((name, _, _)) = FEATURE_LAYER_FIELDS
            .iter()
            .find(|f| f.0.eq_ignore_ascii_case(asked))
        else {
            return Err(format!("Invalid field: {asked}"));
        };
        names.push(*name);
    }
    let geometry = flag(params, "returnGeometry", true)?;
    let mercator = web_mercator(params)?;
    let features: Vec<Value> = page
        .iter()
        .map(|park| {
            let attributes: serde_json::Map<String, Value> = names
                .iter()
                .map(|n| {
                    let value = match attribute(park, n) {
                        Some(Literal::Number(v)) => Value::from(v),
                        Some(Literal::Text(t)) => Value::from(t),
                        None => Value::Null,
                    };
                    ((*n).to_owned(), value)
                })
                .collect();
            let mut feature = json!({ "attributes": attributes });
            if geometry && let Some(obj) = feature.as_object_mut() {
                let (x, y) = if mercator {
                    to_web_mercator(park.x, park.y)
                } else {
                    (park.x, park.y)
                };
                obj.insert("geometry".into(), json!({"x": x, "y": y}));
            }
            feature
        })
        .collect();
    let spatial_reference = if mercator {
        json!({"wkid": 102_100, "latestWkid": 3857})
    } else {
        wgs84()
    };
    let fields: Vec<Value> = fields_json()
        .into_iter()
        .filter(|f| names.iter().any(|n| f["name"] == *n))
        .collect();
    let mut body = json!({
        "objectIdFieldName": "OBJECTID",
        "uniqueIdField": {"name": "OBJECTID", "isSystemMaintained": true},
        "globalIdFieldName": "",
        "geometryType": "esriGeometryPoint",
        "spatialReference": spatial_reference,
        "fields": fields,
        "features": features,
    });
    if exceeded && let Some(obj) = body.as_object_mut() {
        obj.insert("exceededTransferLimit".into(), true.into());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_query(pairs)
    }

    fn names(answer: &Value) -> Vec<&str> {
        answer["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| f["attributes"]["NAME"].as_str().expect("NAME"))
            .collect()
    }

    #[test]
    fn paths_of_the_feature_service() {
        assert_eq!(
            resource("Testkit/Parks/FeatureServer"),
            Some(Resource::Service)
        );
        assert_eq!(
            resource("Testkit/Parks/FeatureServer/0/"),
            Some(Resource::Layer)
        );
        assert_eq!(
            resource("Testkit/Parks/FeatureServer/0/query"),
            Some(Resource::Query)
        );
        assert_eq!(
            resource("Testkit/Parks/FeatureServer/1"),
            Some(Resource::Missing)
        );
        assert_eq!(resource("Testkit/Parks/FeatureServerX/0"), None);
        assert_eq!(resource("Secured/FeatureServer/0"), None);
    }

    #[test]
    fn where_clauses_select_by_attribute() {
        let all = query(&params(&[
            ("f", "json"),
            ("where", "1=1"),
            ("outFields", "*"),
        ]))
        .expect("all");
        assert_eq!(names(&all), ["Prospect Park", "Sylvan Park", "Ford Park"]);
        assert_eq!(all["features"][0]["attributes"]["VISITORS"], 120_000);
        assert_eq!(all["features"][0]["geometry"]["x"], -117.1825);
        assert!(all.get("exceededTransferLimit").is_none());

        let busy = query(&params(&[
            ("f", "json"),
            ("where", "VISITORS >= 80000 and 1 = 1"),
            ("outFields", "NAME"),
            ("returnGeometry", "false"),
        ]))
        .expect("busy");
        assert_eq!(names(&busy), ["Prospect Park", "Ford Park"]);
        assert!(busy["features"][0].get("geometry").is_none());
        assert_eq!(busy["fields"].as_array().map(Vec::len), Some(1));

        let quoted = query(&params(&[
            ("f", "json"),
            ("where", "name = 'Sylvan Park' AND OBJECTID <> 3"),
            ("outFields", "NAME,VISITORS"),
        ]))
        .expect("quoted");
        assert_eq!(names(&quoted), ["Sylvan Park"]);
    }

    #[test]
    fn counts_ids_pages_and_web_mercator() {
        let count = query(&params(&[
            ("f", "json"),
            ("where", "VISITORS < 100000"),
            ("returnCountOnly", "true"),
        ]))
        .expect("count");
        assert_eq!(count, json!({"count": 2}));
        let ids = query(&params(&[
            ("f", "json"),
            ("objectIds", "3,1"),
            ("returnIdsOnly", "true"),
        ]))
        .expect("ids");
        assert_eq!(ids["objectIds"], json!([1, 3]));
        let page = query(&params(&[
            ("f", "json"),
            ("where", "1=1"),
            ("outFields", "*"),
            ("resultOffset", "1"),
            ("resultRecordCount", "1"),
        ]))
        .expect("page");
        assert_eq!(names(&page), ["Sylvan Park"]);
        assert_eq!(page["exceededTransferLimit"], true);
        let mercator = query(&params(&[
            ("f", "json"),
            ("where", "OBJECTID = 1"),
            ("outSR", r#"{"wkid":102100}"#),
        ]))
        .expect("mercator");
        let x = mercator["features"][0]["geometry"]["x"]
            .as_f64()
            .expect("x");
        assert!((x - -13_044_696.23).abs() < 0.01, "{x}");
        assert_eq!(mercator["spatialReference"]["latestWkid"], 3857);
    }

    #[test]
    fn what_it_cannot_honour_is_refused() {
        for pairs in [
            &[("f", "json")][..],
            &[("f", "pbf"), ("where", "1=1")],
            &[("f", "json"), ("where", "NOPE = 1")],
            &[("f", "json"), ("where", "NAME = 3")],
            &[("f", "json"), ("where", "VISITORS = 'x'")],
            &[("f", "json"), ("where", "VISITORS LIKE 3")],
            &[("f", "json"), ("where", "NAME = 'it's'")],
            &[("f", "json"), ("where", "1=1"), ("outFields", "NAME,NOPE")],
            &[("f", "json"), ("where", "1=1"), ("outSR", "2193")],
            &[("f", "json"), ("where", "1=1"), ("returnGeometry", "maybe")],
        ] {
            let refused = answer(Resource::Query, &params(pairs));
            assert_eq!(refused["error"]["code"], 400, "{pairs:?}: {refused}");
        }
    }

    #[test]
    fn the_layer_describes_its_fields_and_extent() {
        let layer = layer_json();
        let fields: Vec<&str> = layer["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        assert_eq!(fields, ["OBJECTID", "NAME", "VISITORS"]);
        assert_eq!(layer["objectIdField"], "OBJECTID");
        assert_eq!(layer["extent"]["xmin"], -117.1825);
        assert_eq!(layer["extent"]["ymax"], 34.0622);
        assert_eq!(service_json()["layers"][0]["name"], FEATURE_LAYER_NAME);
    }
}
