import pluginJson from './plugin.json';

describe('plugin.json', () => {
  it('declares a backend data source that Grafana can load and alert with', () => {
    expect(pluginJson.id).toMatch(/^[0-9a-z]+\-([0-9a-z]+\-)?datasource$/);
    expect(pluginJson.type).toBe('datasource');
    expect(pluginJson.backend).toBe(true);
    expect(pluginJson.alerting).toBe(true);
    expect(pluginJson.executable).toBe('gpx_velo');
    expect(pluginJson.info.logos.small).toBeTruthy();
    expect(pluginJson.info.logos.large).toBeTruthy();
    expect(pluginJson.dependencies.grafanaDependency).toMatch(/^>=\d+\.\d+\.\d+$/);
  });
});
