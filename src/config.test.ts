import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';

test('defaults, then file, then environment, then flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  assert.equal(loadConfig({ dataDir: dir }, {}).port, 8080);
  writeFileSync(join(dir, 'sluice.json'), JSON.stringify({ port: 9000, host: '0.0.0.0', channels: { maxPerUser: 5 } }));
  const fromFile = loadConfig({ dataDir: dir }, {});
  assert.equal(fromFile.port, 9000);
  assert.equal(fromFile.host, '0.0.0.0');
  assert.equal(fromFile.channels.maxPerUser, 5);
  assert.equal(fromFile.channels.defaultTimeoutSeconds, 300);
  assert.equal(loadConfig({ dataDir: dir }, { SLUICE_PORT: '9100' }).port, 9100);
  assert.equal(loadConfig({ dataDir: dir, port: 9200 }, { SLUICE_PORT: '9100' }).port, 9200);
});

test('bad configuration is refused with a precise message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  writeFileSync(join(dir, 'sluice.json'), JSON.stringify({ prot: 1 }));
  assert.throws(() => loadConfig({ dataDir: dir }, {}), /unknown config keys .*prot/);
  writeFileSync(join(dir, 'sluice.json'), '{ not json');
  assert.throws(() => loadConfig({ dataDir: dir }, {}), /cannot read config file/);
  assert.throws(() => loadConfig({ dataDir: mkdtempSync(join(tmpdir(), 'c-')) }, { SLUICE_PORT: 'eighty' }), /port number/);
  assert.throws(() => loadConfig({ dataDir: mkdtempSync(join(tmpdir(), 'c-')), logLevel: 'loud' as never }, {}), /logLevel/);
});
