// A throwaway self-signed certificate for 127.0.0.1, so clients that send bearer tokens only over TLS (kubectl) can talk to the simulator.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** Generates a P-256 key and a certificate valid for 127.0.0.1 and localhost with the `openssl` command. */
export function selfSignedCertificate(host: string): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-sim-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    const san = ['IP:127.0.0.1', 'DNS:localhost', ...(/^[0-9.]+$/.test(host) ? [`IP:${host}`] : [`DNS:${host}`])];
    const result = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=conveyor-sim',
        '-addext',
        `subjectAltName=${[...new Set(san)].join(',')}`,
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { encoding: 'utf8' },
    );
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(
        `cannot create a TLS certificate for the simulator: openssl ${result.error === undefined ? `exited ${String(result.status)}: ${result.stderr.trim()}` : `is not available (${result.error.message})`}; pass tls: { cert, key } instead`,
      );
    }
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
