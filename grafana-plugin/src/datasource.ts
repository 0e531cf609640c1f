import {
  CoreApp,
  DataQueryRequest,
  DataSourceInstanceSettings,
  DataSourceVariableSupport,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY, VeloOptions, VeloQuery } from './types';

/**
 * Formats a template variable's value for SQL, as Grafana's SQL data sources do: a single
 * value goes in as typed, a multi-value or "All" variable becomes a list of quoted strings
 * for `IN (...)`.
 */
export function interpolateSqlVariable(value: string | string[], variable: { multi?: boolean; includeAll?: boolean }) {
  const quote = (v: string) => `'${v.replace(/'/g, "''")}'`;
  if (!variable.multi && !variable.includeAll) {
    return Array.isArray(value) ? value.join(',') : value;
  }
  return (Array.isArray(value) ? value : [value]).map(quote).join(',');
}

/**
 * Where a query runs: the query editor's preview of an SQL query (the panel editor,
 * Explore) runs on the dataset's dummy twin — free, exact answers about made-up people —
 * unless the query's preview is 'data'; everything else (dashboards, alerts, variables) runs
 * on the data, whatever the stored query says.
 */
export function withPreviewTarget(query: VeloQuery, app?: string): VeloQuery {
  const sql = (query.queryType ?? 'sql') === 'sql';
  const preview = app === CoreApp.PanelEditor || app === CoreApp.Explore;
  return { ...query, target: sql && preview && query.preview !== 'data' ? 'dummy' : 'data' };
}

export class DataSource extends DataSourceWithBackend<VeloQuery, VeloOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<VeloOptions>) {
    super(instanceSettings);
    // Dashboard variables use the query editor; a domain query lists a column's public
    // values (__text, __value) at no privacy cost.
    this.variables = new VariableSupport();
  }

  getDefaultQuery(_: CoreApp): Partial<VeloQuery> {
    return DEFAULT_QUERY;
  }

  query(request: DataQueryRequest<VeloQuery>) {
    return super.query({ ...request, targets: request.targets.map((q) => withPreviewTarget(q, request.app)) });
  }

  // The $__ macros are not template variables: they stay in the SQL for the backend, which
  // expands them against the (rounded) panel range for dashboards and alert rules alike.
  applyTemplateVariables(query: VeloQuery, scopedVars: ScopedVars): VeloQuery {
    const templateSrv = getTemplateSrv();
    return {
      ...query,
      sql: query.sql && templateSrv.replace(query.sql, scopedVars, interpolateSqlVariable),
      project: query.project && templateSrv.replace(query.project, scopedVars),
    };
  }

  filterQuery(query: VeloQuery): boolean {
    switch (query.queryType) {
      case 'budget':
        return true;
      case 'domain':
        return Boolean(query.table?.trim() && query.column?.trim());
      default:
        return Boolean(query.sql?.trim());
    }
  }
}

/**
 * Dashboard variables run through the data source's own query editor and backend; a new
 * variable starts as the regions' domain.
 */
class VariableSupport extends DataSourceVariableSupport<DataSource, VeloQuery, VeloOptions> {
  getDefaultQuery(): Partial<VeloQuery> {
    return { queryType: 'domain', table: 'booking', column: 'region' };
  }
}
