// Throwaway TLS material for the simulator: a self-signed certificate, or a cluster-style CA with a serving certificate it signed, so clients that send bearer tokens only over TLS (kubectl) and clients that pin a CA can talk to it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** A serving certificate and key, and the CA (PEM) that signed it, which clients pin. */
export interface CaSignedTlsMaterial extends TlsMaterial {
  ca: string;
}

/** Generates a P-256 key and a certificate valid for 127.0.0.1 and localhost with the `openssl` command. */
export function selfSignedCertificate(host: string): TlsMaterial {
  return inTempDir((dir) => {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    openssl([
      'req',
      '-x509',
      ...P256,
      '-days',
      '30',
      '-subj',
      '/CN=conveyor-sim',
      '-addext',
      `subjectAltName=${altNames(host)}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  });
}

/**
 * A CA of its own, as a cluster has (kube-apiserver serves a certificate its cluster CA signed), and a
 * serving certificate for `host` signed by it: pass it as `tls` and give clients `ca` to pin.
 */
export function caSignedCertificate(host: string): CaSignedTlsMaterial {
  return inTempDir((dir) => {
    const file = (name: string) => join(dir, name);
    openssl([
      'req',
      '-x509',
      ...P256,
      '-days',
      '30',
      '-subj',
      '/CN=conveyor-sim-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      file('ca-key.pem'),
      '-out',
      file('ca.pem'),
    ]);
    openssl(['req', '-new', ...P256, '-subj', '/CN=conveyor-sim', '-keyout', file('key.pem'), '-out', file('req.pem')]);
    writeFileSync(file('ext.cnf'), `subjectAltName=${altNames(host)}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    openssl([
      'x509',
      '-req',
      '-in',
      file('req.pem'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca-key.pem'),
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('cert.pem'),
    ]);
    return {
      ca: readFileSync(file('ca.pem'), 'utf8'),
      cert: readFileSync(file('cert.pem'), 'utf8'),
      key: readFileSync(file('key.pem'), 'utf8'),
    };
  });
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function altNames(host: string): string {
  const san = ['IP:127.0.0.1', 'DNS:localhost', ...(/^[0-9.]+$/.test(host) ? [`IP:${host}`] : [`DNS:${host}`])];
  return [...new Set(san)].join(',');
}

function inTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-sim-tls-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `cannot create a TLS certificate for the simulator: openssl ${result.error === undefined ? `exited ${String(result.status)}: ${result.stderr.trim()}` : `is not available (${result.error.message})`}; pass tls: { cert, key } instead`,
    );
  }
}
