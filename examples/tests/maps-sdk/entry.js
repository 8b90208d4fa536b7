// The part of the ArcGIS Maps SDK for JavaScript the gateway's browser test
// uses, bundled by build.mjs into build/sdk.js. The page (served by the
// test) imports it and drives it.
import esriConfig from "@arcgis/core/config.js";
import FeatureLayer from "@arcgis/core/layers/FeatureLayer.js";
import esriId from "@arcgis/core/identity/IdentityManager.js";
import { addProxyRule } from "@arcgis/core/core/urlUtils.js";
import { version } from "@arcgis/core/kernel.js";

export { addProxyRule, esriConfig, FeatureLayer, esriId, version };
