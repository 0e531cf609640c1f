import React, { ChangeEvent, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, Input, RadioButtonGroup, Stack, Text, TextArea } from '@grafana/ui';

import { DataSource } from '../datasource';
import { DEFAULT_QUERY, VeloFormat, VeloOptions, VeloQuery, VeloQueryType, VeloTarget } from '../types';

type Props = QueryEditorProps<DataSource, VeloQuery, VeloOptions>;

const QUERY_TYPES: Array<SelectableValue<VeloQueryType>> = [
  { label: 'SQL', value: 'sql', description: 'A differentially private answer to a Velo SQL query' },
  { label: 'Budget', value: 'budget', description: "The project's privacy budget: total, spent and left" },
  {
    label: 'Domain',
    value: 'domain',
    description: "A column's public values, named, for dashboard variables (no privacy cost)",
  },
];

const FORMATS: Array<SelectableValue<VeloFormat>> = [
  { label: 'Time series', value: 'time_series' },
  { label: 'Table', value: 'table' },
];

const PREVIEWS: Array<SelectableValue<VeloTarget>> = [
  {
    label: 'Dummy data',
    value: 'dummy',
    description: 'Free: exact answers about made-up people generated from the catalog, never the data',
  },
  { label: 'Data', value: 'data', description: 'The real, noisy answer: each new query is charged' },
];

/** Returns why a value is not acceptable, or undefined when it is. */
type Validate = (value: number) => string | undefined;

const validateEpsilon: Validate = (v) => (v > 0 ? undefined : 'Epsilon must be greater than 0');
const validateDelta: Validate = (v) => (v >= 0 && v < 1 ? undefined : 'Delta must be at least 0 and less than 1');

interface NumberFieldProps {
  id: string;
  label: string;
  tooltip: string;
  value?: number;
  validate: Validate;
  onCommit: (value: number | undefined) => void;
}

// A number is committed on blur, and only when valid and changed: the query never holds, and
// never runs with, a value Velo would reject. Empty text commits undefined (the default).
function NumberField({ id, label, tooltip, value, validate, onCommit }: NumberFieldProps) {
  const [text, setText] = useState(value === undefined ? '' : String(value));
  const [error, setError] = useState<string>();

  const onBlur = () => {
    const trimmed = text.trim();
    const parsed = trimmed === '' ? undefined : Number(trimmed);
    let problem: string | undefined;
    if (parsed !== undefined) {
      problem = Number.isFinite(parsed) ? validate(parsed) : `${label} must be a number`;
    }
    setError(problem);
    if (!problem && parsed !== value) {
      onCommit(parsed);
    }
  };

  return (
    <InlineField label={label} tooltip={tooltip} invalid={Boolean(error)} error={error}>
      <Input
        id={id}
        type="number"
        step="any"
        width={12}
        placeholder="default"
        value={text}
        onChange={(e: ChangeEvent<HTMLInputElement>) => setText(e.target.value)}
        onBlur={onBlur}
      />
    </InlineField>
  );
}

interface TextFieldProps {
  name: string;
  label: string;
  tooltip?: string;
  placeholder: string;
  value?: string;
  onChange: (value: string) => void;
  onBlur: () => void;
}

// A text setting of the query: changed on typing, run on blur.
function TextField({ name, label, tooltip, placeholder, value, onChange, onBlur }: TextFieldProps) {
  return (
    <InlineField label={label} tooltip={tooltip}>
      <Input
        id={`query-editor-${name}`}
        width={16}
        placeholder={placeholder}
        value={value ?? ''}
        onChange={(e: ChangeEvent<HTMLInputElement>) => onChange(e.target.value)}
        onBlur={onBlur}
      />
    </InlineField>
  );
}

export function QueryEditor({ query, onChange, onRunQuery }: Props) {
  const { queryType, sql, project, epsilon, delta, format, table, column, preview } = { ...DEFAULT_QUERY, ...query };

  const change = (patch: Partial<VeloQuery>) => onChange({ ...query, ...patch });
  const changeAndRun = (patch: Partial<VeloQuery>) => {
    change(patch);
    onRunQuery();
  };

  return (
    <Stack direction="column" gap={1}>
      <Stack gap={0} wrap="wrap">
        <InlineField label="Query type">
          <RadioButtonGroup options={QUERY_TYPES} value={queryType} onChange={(v) => changeAndRun({ queryType: v })} />
        </InlineField>
        <TextField
          name="project"
          label="Project"
          tooltip="Empty: the data source's default project"
          placeholder="default"
          value={project}
          onChange={(v) => change({ project: v })}
          onBlur={onRunQuery}
        />
        {queryType === 'domain' && (
          <>
            <TextField
              name="table"
              label="Table"
              placeholder="booking"
              value={table}
              onChange={(v) => change({ table: v })}
              onBlur={onRunQuery}
            />
            <TextField
              name="column"
              label="Column"
              tooltip="A column with a public domain, as region or priority"
              placeholder="region"
              value={column}
              onChange={(v) => change({ column: v })}
              onBlur={onRunQuery}
            />
          </>
        )}
        {queryType === 'sql' && (
          <>
            <NumberField
              id="query-editor-epsilon"
              label="Epsilon"
              tooltip="Privacy loss spent by a new query; empty: the project's default"
              value={epsilon}
              validate={validateEpsilon}
              onCommit={(v) => changeAndRun({ epsilon: v })}
            />
            <NumberField
              id="query-editor-delta"
              label="Delta"
              tooltip="Failure probability of the guarantee; empty: the project's default"
              value={delta}
              validate={validateDelta}
              onCommit={(v) => changeAndRun({ delta: v })}
            />
            <InlineField label="Format">
              <RadioButtonGroup options={FORMATS} value={format} onChange={(v) => changeAndRun({ format: v })} />
            </InlineField>
            <InlineField
              label="Preview on"
              tooltip="Where this editor's preview runs; the dashboard always runs on the data"
            >
              <RadioButtonGroup
                options={PREVIEWS}
                value={preview ?? 'dummy'}
                onChange={(v) => changeAndRun({ preview: v })}
              />
            </InlineField>
          </>
        )}
      </Stack>
      {queryType === 'sql' && (
        <>
          <TextArea
            id="query-editor-sql"
            aria-label="SQL"
            rows={6}
            placeholder="SELECT $__timeGroup(d_contact, 1M) AS time, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY time"
            value={sql}
            onChange={(e: ChangeEvent<HTMLTextAreaElement>) => change({ sql: e.target.value })}
            onBlur={onRunQuery}
          />
          <Text variant="bodySmall" color="secondary">
            Macros: $__timeFilter(col), $__timeGroup(col, 1M), $__timeFrom(), $__timeTo(); the panel range is rounded
            out to whole periods. The preview here runs on dummy data unless you choose Data: free, exact answers about
            made-up people, to check the query. On the dashboard each new query spends privacy budget from the project;
            running an identical query again is free, as Velo answers it from its release cache.
          </Text>
        </>
      )}
    </Stack>
  );
}
