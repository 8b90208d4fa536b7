//! The layer's `query` operation over [`PARKS`].

use serde_json::{Value, json};

use super::where_clause::{Literal, attribute, matches, parse_where};
use super::{FEATURE_LAYER_FIELDS, PARKS, Park, fields_json, wgs84};
use crate::wire::Params;

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

pub(super) fn query(params: &Params) -> Result<Value, String> {
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
    use crate::feature_layer::{Resource, answer};

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
}
