// The dashboard model the lab's dashboards must follow, composed from the types of @grafana/schema
// (the dashboard kind and each panel plugin's options) for the panel types the lab uses.
// ./generate.sh turns it into dashboard.schema.json. Grafana's Prometheus query and annotation types
// are not in @grafana/schema (they live in AGPL packages), so those two are written out below from
// the fields Grafana's Prometheus data source reads.
import type * as raw from "@grafana/schema/dist/types/raw/dashboard/x/dashboard_types.gen";
import type { DataQuery } from "@grafana/schema/dist/types/common/common.gen";
import type * as timeseries from "@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";
import type * as stat from "@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type * as table from "@grafana/schema/dist/types/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen";

export interface PrometheusQuery extends DataQuery {
  datasource?: raw.DataSourceRef;
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  format?: "time_series" | "table" | "heatmap";
  interval?: string;
  intervalFactor?: number;
  editorMode?: "code" | "builder";
}

export interface PrometheusAnnotation extends raw.AnnotationQuery {
  expr?: string;
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

type BaseFieldConfig = Omit<raw.FieldConfig, "custom">;

// An override property: a key of the field config ("unit", "thresholds", ...) with the value type
// Grafana gives it, or "custom.<key>" of the panel's own field config (the generator cannot spell out
// template keys: tests/unit/test_grafana_schema.py checks those against the panel's `custom` schema).
type FieldProperty<Custom> =
  | { [K in keyof BaseFieldConfig]-?: { id: K; value?: BaseFieldConfig[K] } }[keyof BaseFieldConfig]
  | CustomProperty;

interface CustomProperty {
  /** @pattern ^custom\.[A-Za-z] */
  id: string;
  value?: unknown;
}

interface Override<Custom> {
  matcher: raw.MatcherConfig;
  properties: Array<FieldProperty<Custom>>;
}

interface FieldConfigSource<Custom> {
  defaults: BaseFieldConfig & { custom?: Partial<Custom> };
  overrides: Array<Override<Custom>>;
}

type PanelOf<Type extends string, Options, Custom> = Omit<
  raw.Panel,
  "type" | "options" | "fieldConfig" | "targets"
> & {
  type: Type;
  options?: Partial<Options>;
  fieldConfig?: FieldConfigSource<Custom>;
  targets?: PrometheusQuery[];
};

export type TimeSeriesPanel = PanelOf<"timeseries", timeseries.Options, timeseries.FieldConfig>;
export type StatPanel = PanelOf<"stat", stat.Options, {}>;
export type TablePanel = PanelOf<"table", table.Options, table.FieldConfig>;

export type LabDashboard = Omit<raw.Dashboard, "panels" | "annotations"> & {
  panels?: Array<TimeSeriesPanel | StatPanel | TablePanel | raw.RowPanel>;
  annotations?: { list?: PrometheusAnnotation[] };
};
