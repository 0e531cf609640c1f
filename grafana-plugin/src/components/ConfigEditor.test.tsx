import React from 'react';
import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';

import { VeloOptions, VeloSecureJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

type Settings = DataSourceSettings<VeloOptions, VeloSecureJsonData>;

const settings = (patch: Partial<Settings> = {}): Settings =>
  ({
    id: 1,
    uid: 'velo',
    name: 'Velo',
    type: 'velo-fse-datasource',
    jsonData: { url: 'http://127.0.0.1:8080' },
    secureJsonFields: {},
    ...patch,
  }) as Settings;

function setup(options: Settings) {
  const onOptionsChange = jest.fn();
  render(<ConfigEditor options={options} onOptionsChange={onOptionsChange} />);
  return onOptionsChange;
}

describe('ConfigEditor', () => {
  it('sets the URL and the default project in jsonData', () => {
    const onOptionsChange = setup(settings({ jsonData: { timezone: 'Europe/Rome' } }));

    fireEvent.change(screen.getByPlaceholderText('http://127.0.0.1:8080'), {
      target: { value: 'http://velo:8080' },
    });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: { timezone: 'Europe/Rome', url: 'http://velo:8080' } })
    );

    fireEvent.change(screen.getByPlaceholderText('wl'), { target: { value: 'wl2024' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: { timezone: 'Europe/Rome', defaultProject: 'wl2024' } })
    );
  });

  it('sets the language of the error messages in jsonData', () => {
    const onOptionsChange = setup(settings({ jsonData: { url: 'http://velo:8080' } }));

    fireEvent.change(screen.getByPlaceholderText('it'), { target: { value: 'en' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: { url: 'http://velo:8080', language: 'en' } })
    );
  });

  it('flags a missing URL', () => {
    setup(settings({ jsonData: {} }));
    expect(screen.getByText('The Velo URL is required')).toBeInTheDocument();
  });

  it('sends the token in secureJsonData only', () => {
    const onOptionsChange = setup(settings());

    fireEvent.change(screen.getByPlaceholderText('Velo bearer token'), { target: { value: 's3cret' } });
    const changed: Settings = onOptionsChange.mock.lastCall[0];
    expect(changed.secureJsonData).toEqual({ token: 's3cret' });
    expect(changed.jsonData).toEqual({ url: 'http://127.0.0.1:8080' });
  });

  it('shows a stored token as configured and resets it', () => {
    const onOptionsChange = setup(settings({ secureJsonFields: { token: true } }));

    const token = screen.getByPlaceholderText('Velo bearer token');
    expect(token).toBeDisabled();
    expect(token).toHaveValue('configured');
    fireEvent.click(screen.getByRole('button', { name: 'Reset' }));
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({ secureJsonFields: { token: false }, secureJsonData: { token: '' } })
    );
  });
});
