import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { InlineField, Input, SecretInput } from '@grafana/ui';

import { VeloOptions, VeloSecureJsonData } from '../types';

type Props = DataSourcePluginOptionsEditorProps<VeloOptions, VeloSecureJsonData>;

const LABEL_WIDTH = 18;
const INPUT_WIDTH = 40;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;

  const onJsonDataChange = (key: keyof VeloOptions) => (event: ChangeEvent<HTMLInputElement>) => {
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: event.target.value } });
  };

  const onTokenChange = (event: ChangeEvent<HTMLInputElement>) => {
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, token: event.target.value } });
  };

  const onTokenReset = () => {
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, token: false },
      secureJsonData: { ...secureJsonData, token: '' },
    });
  };

  return (
    <>
      <InlineField
        label="URL"
        labelWidth={LABEL_WIDTH}
        required
        invalid={!jsonData.url}
        error="The Velo URL is required"
        tooltip="Base URL of the Velo API, as the Grafana server reaches it"
      >
        <Input
          id="config-editor-url"
          value={jsonData.url ?? ''}
          onChange={onJsonDataChange('url')}
          placeholder="http://127.0.0.1:8080"
          width={INPUT_WIDTH}
        />
      </InlineField>
      <InlineField
        label="Default project"
        labelWidth={LABEL_WIDTH}
        tooltip="Project used by queries that do not name one"
      >
        <Input
          id="config-editor-default-project"
          value={jsonData.defaultProject ?? ''}
          onChange={onJsonDataChange('defaultProject')}
          placeholder="wl"
          width={INPUT_WIDTH}
        />
      </InlineField>
      <InlineField
        label="Time zone"
        labelWidth={LABEL_WIDTH}
        tooltip="IANA time zone in which the panel's time range is turned into calendar dates"
      >
        <Input
          id="config-editor-timezone"
          value={jsonData.timezone ?? ''}
          onChange={onJsonDataChange('timezone')}
          placeholder="Europe/Rome"
          width={INPUT_WIDTH}
        />
      </InlineField>
      <InlineField
        label="Language"
        labelWidth={LABEL_WIDTH}
        tooltip="Language of Velo's error messages in panels: it (Italian) or en (English)"
      >
        <Input
          id="config-editor-language"
          value={jsonData.language ?? ''}
          onChange={onJsonDataChange('language')}
          placeholder="it"
          width={INPUT_WIDTH}
        />
      </InlineField>
      <InlineField
        label="Token"
        labelWidth={LABEL_WIDTH}
        required
        tooltip="Bearer token of a Velo user with the official role; stored encrypted, used only by the backend"
      >
        <SecretInput
          id="config-editor-token"
          isConfigured={Boolean(secureJsonFields?.token)}
          value={secureJsonData?.token ?? ''}
          onChange={onTokenChange}
          onReset={onTokenReset}
          placeholder="Velo bearer token"
          width={INPUT_WIDTH}
        />
      </InlineField>
    </>
  );
}
