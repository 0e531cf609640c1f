import { CoreApp, DataSourceInstanceSettings, ScopedVars, VariableSupportType } from '@grafana/data';

import { DataSource, interpolateSqlVariable, withPreviewTarget } from './datasource';
import { VeloOptions, VeloQuery } from './types';

const variables: Record<string, { value: string | string[]; multi?: boolean }> = {
  region: { value: 'Lazio' },
  regions: { value: ['Lazio', "Valle d'Aosta"], multi: true },
  project: { value: 'wl' },
};

// A stand-in for Grafana's template service: it knows the variables above and, like the real
// one, leaves anything else that looks like a variable (the $__ macros) as it is.
jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({
    replace: (target: string, _scopedVars?: ScopedVars, format?: Function) =>
      target.replace(/\$(\w+)/g, (match, name: string) => {
        const variable = variables[name];
        if (!variable) {
          return match;
        }
        return format ? format(variable.value, variable) : String(variable.value);
      }),
  }),
}));

const settings = {
  id: 1,
  uid: 'velo',
  type: 'velo-fse-datasource',
  name: 'Velo',
  jsonData: { url: 'http://127.0.0.1:8080' },
} as unknown as DataSourceInstanceSettings<VeloOptions>;

const query = (q: Partial<VeloQuery>): VeloQuery => ({ refId: 'A', ...q });

describe('DataSource', () => {
  const ds = new DataSource(settings);

  it('replaces template variables in sql and project and leaves the macros to the backend', () => {
    const got = ds.applyTemplateVariables(
      query({
        sql: "SELECT COUNT(*) FROM booking WHERE region = '$region' AND $__timeFilter(d_contact)",
        project: '$project',
      }),
      {}
    );
    expect(got.sql).toBe("SELECT COUNT(*) FROM booking WHERE region = 'Lazio' AND $__timeFilter(d_contact)");
    expect(got.project).toBe('wl');
  });

  it('quotes the values of a multi-value variable for IN lists', () => {
    const got = ds.applyTemplateVariables(
      query({ sql: 'SELECT COUNT(*) FROM booking WHERE region IN ($regions)' }),
      {}
    );
    expect(got.sql).toBe("SELECT COUNT(*) FROM booking WHERE region IN ('Lazio','Valle d''Aosta')");
  });

  it('drops SQL queries without SQL and keeps budget queries', () => {
    expect(ds.filterQuery(query({ queryType: 'sql', sql: '' }))).toBe(false);
    expect(ds.filterQuery(query({ queryType: 'sql', sql: '  \n' }))).toBe(false);
    expect(ds.filterQuery(query({ sql: undefined }))).toBe(false);
    expect(ds.filterQuery(query({ queryType: 'sql', sql: 'SELECT COUNT(*) FROM booking' }))).toBe(true);
    expect(ds.filterQuery(query({ queryType: 'budget' }))).toBe(true);
    expect(ds.filterQuery(query({ queryType: 'domain', table: 'booking', column: 'region' }))).toBe(true);
    expect(ds.filterQuery(query({ queryType: 'domain', table: 'booking' }))).toBe(false);
  });

  it('serves dashboard variables through its own query editor', () => {
    expect(ds.variables?.getType()).toBe(VariableSupportType.Datasource);
    expect(ds.variables?.getDefaultQuery?.()).toEqual({ queryType: 'domain', table: 'booking', column: 'region' });
  });

  it('defaults to a table-formatted SQL query', () => {
    expect(ds.getDefaultQuery(CoreApp.PanelEditor)).toEqual({ queryType: 'sql', format: 'table', sql: '' });
  });
});

describe('interpolateSqlVariable', () => {
  it.each([
    ['single value as typed', 'Lazio', {}, 'Lazio'],
    ['multi value quoted', ['a', 'b'], { multi: true }, "'a','b'"],
    ['include-all quoted', 'a', { includeAll: true }, "'a'"],
    ['quotes escaped', ["it's"], { multi: true }, "'it''s'"],
  ])('%s', (_name, value, variable, want) => {
    expect(interpolateSqlVariable(value, variable)).toBe(want);
  });
});

describe('withPreviewTarget', () => {
  it('runs the editor preview of an SQL query on the dummy twin', () => {
    for (const app of [CoreApp.PanelEditor, CoreApp.Explore]) {
      expect(withPreviewTarget(query({ queryType: 'sql', sql: 'x' }), app).target).toBe('dummy');
      expect(withPreviewTarget(query({ sql: 'x', preview: 'dummy' }), app).target).toBe('dummy');
    }
  });

  it('runs on the data when the query asks its preview there', () => {
    expect(withPreviewTarget(query({ sql: 'x', preview: 'data' }), CoreApp.PanelEditor).target).toBe('data');
  });

  it('runs dashboards and everything but the editor on the data, whatever the query stored', () => {
    for (const app of [CoreApp.Dashboard, CoreApp.UnifiedAlerting, undefined, 'unknown']) {
      expect(withPreviewTarget(query({ sql: 'x', target: 'dummy', preview: 'dummy' }), app).target).toBe('data');
    }
  });

  it('leaves budget and domain queries on the data', () => {
    expect(withPreviewTarget(query({ queryType: 'budget' }), CoreApp.PanelEditor).target).toBe('data');
    expect(withPreviewTarget(query({ queryType: 'domain' }), CoreApp.Explore).target).toBe('data');
  });
});
