// The page of the gateway's Maps SDK test (examples/tests/gateway_maps_sdk.rs),
// served by the test at /app/page.js next to the SDK's bundle (/sdk/sdk.js)
// and assets (/sdk-assets/). Every request the SDK makes to a layer goes
// through the gateway's proxy path, by esriConfig.request.proxyRules; the
// page itself knows no token and is given none.
import { addProxyRule, esriConfig, FeatureLayer, esriId, version } from "/sdk/sdk.js";

const status = document.getElementById("status");
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push(`${e.violatedDirective} ${e.blockedURI}`);
});

// Never the CDN: the SDK's assets (locale strings and the like) come from here.
esriConfig.assetsPath = `${location.origin}/sdk-assets`;

// Everything the SDK's request layer handed back to the page's code.
const responses = [];
esriConfig.request.interceptors.push({
  after(response) {
    responses.push({
      url: response.url,
      data: response.data,
      headers: response.getAllHeaders ? response.getAllHeaders() : null,
    });
  },
});

// A rule in esriConfig.request.proxyRules, as the SDK keeps them (its
// urlPrefix without the scheme, lower case, with a trailing slash).
function proxyThrough(urlPrefix) {
  addProxyRule({ urlPrefix, proxyUrl: `${location.origin}/proxy` });
}

function explain(e) {
  let details = "";
  try {
    details = JSON.stringify(e?.details);
  } catch {
    details = String(e?.details);
  }
  const blocked = violations.length ? ` (blocked by the page's policy: ${violations.join(", ")})` : "";
  return new Error(`${e?.name ?? "error"}: ${e?.message ?? e} ${details}${blocked}`);
}

window.proof = {
  version,
  // Loads the layer at `url` (its services under `urlPrefix` proxied) and
  // queries it: the features with more than 50,000 visitors, and the count.
  async run(urlPrefix, url) {
    proxyThrough(urlPrefix);
    try {
      const layer = new FeatureLayer({ url });
      await layer.load();
      const busy = await layer.queryFeatures({
        where: "VISITORS > 50000",
        outFields: ["*"],
        returnGeometry: true,
      });
      const count = await layer.queryFeatureCount({ where: "1=1" });
      return {
        loaded: layer.loaded,
        title: layer.title,
        objectIdField: layer.objectIdField,
        geometryType: layer.geometryType,
        fields: layer.fields.map((f) => f.name),
        features: busy.features.map((f) => ({
          attributes: f.attributes,
          x: f.geometry?.x,
          y: f.geometry?.y,
        })),
        count,
        sourceJSON: JSON.stringify(layer.sourceJSON),
        queryJSON: JSON.stringify(busy.toJSON()),
      };
    } catch (e) {
      throw explain(e);
    }
  },
  // Everything page script can see that might hold a token, and every host
  // the page asked for something.
  seen() {
    const entries = performance.getEntriesByType("resource");
    const hosts = entries.map((e) => new URL(e.name).host);
    // The requests that went through the gateway's proxy path: their
    // targets and the status the gateway answered.
    const proxied = entries
      .filter((e) => new URL(e.name).pathname === "/proxy")
      .map((e) => ({ target: new URL(e.name).search.slice(1), status: e.responseStatus }));
    return {
      proxied,
      violations,
      responses: JSON.stringify(responses),
      credentials: esriId.credentials.length,
      identity: JSON.stringify(esriId.toJSON()),
      request: JSON.stringify(esriConfig.request),
      cookie: document.cookie,
      local: JSON.stringify(Object.entries(localStorage)),
      session: JSON.stringify(Object.entries(sessionStorage)),
      hosts: [...new Set([location.host, ...hosts])],
    };
  },
};

const me = await fetch("/auth/me");
status.textContent = me.ok ? `Signed in as ${(await me.json()).username}` : "Signed out";
status.className = me.ok ? "ready signed-in" : "ready signed-out";
