import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';

import { DataSource } from '../datasource';
import { VeloQuery } from '../types';
import { QueryEditor } from './QueryEditor';

function setup(query: Partial<VeloQuery> = {}) {
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  render(
    <QueryEditor
      datasource={{} as DataSource}
      query={{ refId: 'A', queryType: 'sql', format: 'table', sql: '', ...query }}
      onChange={onChange}
      onRunQuery={onRunQuery}
    />
  );
  return { onChange, onRunQuery };
}

describe('QueryEditor', () => {
  it('changes the SQL on typing and runs it on blur only', () => {
    const { onChange, onRunQuery } = setup();
    const sql = screen.getByRole('textbox', { name: 'SQL' });

    fireEvent.change(sql, { target: { value: 'SELECT COUNT(*) FROM booking' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ sql: 'SELECT COUNT(*) FROM booking' }));
    expect(onRunQuery).not.toHaveBeenCalled();

    fireEvent.blur(sql);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('changes the project', () => {
    const { onChange } = setup();
    fireEvent.change(screen.getByLabelText('Project'), { target: { value: 'wl' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ project: 'wl' }));
  });

  it('commits a valid epsilon on blur and runs the query', () => {
    const { onChange, onRunQuery } = setup();
    const epsilon = screen.getByLabelText('Epsilon');

    fireEvent.change(epsilon, { target: { value: '0.5' } });
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.blur(epsilon);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ epsilon: 0.5 }));
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it.each(['0', '-1'])('rejects epsilon %s with a visible error and no change', (value) => {
    const { onChange, onRunQuery } = setup({ epsilon: 1 });
    const epsilon = screen.getByLabelText('Epsilon');

    fireEvent.change(epsilon, { target: { value } });
    fireEvent.blur(epsilon);
    expect(screen.getByText('Epsilon must be greater than 0')).toBeInTheDocument();
    expect(onChange).not.toHaveBeenCalled();
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it.each(['1', '-0.1'])('rejects delta %s', (value) => {
    const { onChange } = setup();
    const delta = screen.getByLabelText('Delta');

    fireEvent.change(delta, { target: { value } });
    fireEvent.blur(delta);
    expect(screen.getByText('Delta must be at least 0 and less than 1')).toBeInTheDocument();
    expect(onChange).not.toHaveBeenCalled();
  });

  it('clears epsilon back to the project default', () => {
    const { onChange } = setup({ epsilon: 1 });
    const epsilon = screen.getByLabelText('Epsilon');

    fireEvent.change(epsilon, { target: { value: '' } });
    fireEvent.blur(epsilon);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ epsilon: undefined }));
  });

  it('does not rerun the query when epsilon is left as it was', () => {
    const { onChange, onRunQuery } = setup({ epsilon: 0.5 });
    fireEvent.blur(screen.getByLabelText('Epsilon'));
    expect(onChange).not.toHaveBeenCalled();
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('switches the format and runs the query', () => {
    const { onChange, onRunQuery } = setup();
    fireEvent.click(screen.getByLabelText('Time series'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ format: 'time_series' }));
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('previews on dummy data by default, and switches the preview to the data', () => {
    const { onChange, onRunQuery } = setup();
    expect(screen.getByLabelText('Dummy data')).toBeChecked();
    fireEvent.click(screen.getByLabelText('Data'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ preview: 'data' }));
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('hides the SQL fields for a budget query', () => {
    setup({ queryType: 'budget' });
    expect(screen.queryByRole('textbox', { name: 'SQL' })).not.toBeInTheDocument();
    expect(screen.queryByLabelText('Epsilon')).not.toBeInTheDocument();
    expect(screen.getByLabelText('Project')).toBeInTheDocument();
  });

  it('asks for a table and a column in a domain query, and no SQL or epsilon', () => {
    const { onChange, onRunQuery } = setup({ queryType: 'domain' });
    expect(screen.queryByRole('textbox', { name: 'SQL' })).not.toBeInTheDocument();
    expect(screen.queryByLabelText('Epsilon')).not.toBeInTheDocument();

    fireEvent.change(screen.getByLabelText('Table'), { target: { value: 'booking' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ table: 'booking' }));
    const column = screen.getByLabelText('Column');
    fireEvent.change(column, { target: { value: 'region' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ column: 'region' }));
    fireEvent.blur(column);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });
});
