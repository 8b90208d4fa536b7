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

use serde_json::{Value, json};

use crate::wire::{self, Params};

mod query;
mod where_clause;

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
        Resource::Query => query::query(params).unwrap_or_else(|detail| {
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

#[cfg(test)]
mod tests {
    use super::*;

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
