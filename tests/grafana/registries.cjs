// Prints the ids of @grafana/data's registries as JSON: units (value formats), reducers (the
// calculations of legends, stats and reduce transformations), field matchers and transformations.
// Run by ./generate.sh from a folder where @grafana/data and jsdom are installed.
const { JSDOM } = require("jsdom");

// @grafana/data is built for the browser: give it a DOM to load in.
const dom = new JSDOM("<!doctype html><html><head></head><body></body></html>", { url: "http://localhost/" });
for (const key of ["window", "document", "navigator", "history", "location", "localStorage"]) {
  globalThis[key] ??= key === "window" ? dom.window : dom.window[key];
}
const data = require("@grafana/data");

const sorted = (ids) => [...new Set(ids)].sort();
const registries = {
  units: sorted(data.getValueFormats().flatMap((category) => category.submenu.map((unit) => unit.value))),
  reducers: sorted(data.fieldReducers.list().map((reducer) => reducer.id)),
  fieldMatchers: sorted(Object.values(data.FieldMatcherID)),
  transformations: sorted(Object.values(data.DataTransformerID)),
};
process.stdout.write(JSON.stringify(registries, null, 2) + "\n");
