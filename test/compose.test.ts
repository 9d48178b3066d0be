/**
 * docker-compose.yml cannot run here (no Docker engine), so its wiring is checked
 * instead: every worker service runs an entry point that exists, with a config that
 * passes the schema, names that config knows, secrets it needs in its environment,
 * and addresses that point at the services of the file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { ROLES } from '../src/workers/roles';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Service {
  build?: string;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const workers = Object.entries(compose.services).filter(([, s]) => s.build === '.');

function configOf(service: Service): ClusterConfig {
  const flag = service.command!.indexOf('--config');
  const inContainer = service.command![flag + 1]!;
  const mount = service.volumes!.map((v) => v.split(':')).find(([, target]) => target === inContainer);
  assert.ok(mount, `no volume mounts ${inContainer}`);
  return loadConfig(path.resolve(ROOT, mount[0]!));
}

describe('docker-compose.yml', () => {
  test('has PostgreSQL, Temporal on PostgreSQL, the Temporal UI and a worker for every role', () => {
    assert.match(compose.services.postgres!.image!, /^postgres:15/);
    assert.match(compose.services.temporal!.image!, /^temporalio\//);
    assert.equal(compose.services.temporal!.environment!.DB, 'postgres12');
    assert.match(compose.services['temporal-ui']!.image!, /^temporalio\/ui/);
    const roles = new Set(workers.map(([, s]) => path.basename(s.command![0]!, '.ts')));
    for (const role of ROLES) assert.ok(roles.has(role), `no worker service runs the ${role} role`);
  });

  for (const [name, service] of workers) {
    test(`${name}: entry point exists and its settings match the config schema`, () => {
      const entry = service.command![0]!;
      assert.match(entry, /^src\/workers\/[a-z-]+\.ts$/);
      assert.ok(existsSync(path.join(ROOT, entry)), `${entry} does not exist`);
      const config = configOf(service);
      const role = path.basename(entry, '.ts');
      const nameFlag = service.command!.indexOf('--name');
      const given = nameFlag >= 0 ? service.command![nameFlag + 1] : undefined;
      if (role === 'satellite')
        assert.ok(
          config.satellites.some((s) => s.name === given),
          `satellite ${given} is not in the config`,
        );
      if (role === 'slave') {
        const slave = config.slaves.find((s) => s.name === given);
        assert.ok(slave, `slave ${given} is not in the config`);
        if (slave.credentialEnv) assert.ok(service.environment?.[slave.credentialEnv], `${slave.credentialEnv} is not set for ${name}`);
      }
      if (config.alerts?.webhookTokenEnv)
        assert.ok(service.environment?.[config.alerts.webhookTokenEnv], `${config.alerts.webhookTokenEnv} is not set for ${name}`);
      if (config.postgres.passwordEnv)
        assert.ok(service.environment?.[config.postgres.passwordEnv], `${config.postgres.passwordEnv} is not set for ${name}`);
      // Addresses in the config point at services of this file.
      const [temporalHost, temporalPort] = config.temporal.address.split(':');
      assert.ok(compose.services[temporalHost!], `temporal.address names ${temporalHost}, which is no service`);
      assert.equal(temporalPort, '7233');
      assert.ok(compose.services[new URL(config.postgres.url).hostname], 'postgres.url names no service');
    });
  }
});
