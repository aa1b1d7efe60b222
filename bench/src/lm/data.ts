// `pnpm data`: builds the fortunes corpus from Debian's `fortunes` and `fortunes-min` packages
// (version pinned, .deb files checked by SHA-256): documents are the quotations between '%' lines
// of every fortune file; each goes to train / validation / test by a hash of its text (90 / 5 / 5,
// so the split depends on nothing but the document, and duplicates land in one split), and the
// splits are written in the fortune format (documents separated by "%" lines) to bench/data/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitDocuments } from '@kernel-attention/performer';

export const DATA_DIR = fileURLToPath(new URL('../../data/fortunes/', import.meta.url));

export const SOURCE = {
  packages: [
    {
      name: 'fortunes',
      version: '1:1.99.1-7.3',
      sha256: '41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5',
    },
    {
      name: 'fortunes-min',
      version: '1:1.99.1-7.3',
      sha256: '9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07',
    },
  ],
  distribution: 'Debian 12 (bookworm), main',
  license:
    'BSD-3-Clause (fortune-mod, The Regents of the University of California); see /usr/share/doc/fortunes/copyright in the package',
};

export type Split = 'train' | 'validation' | 'test';

/** FNV-1a (32-bit) of the document: 0 → test, 1 → validation, 2 … 19 → train. */
export function splitOf(doc: string): Split {
  let h = 0x811c9dc5;
  for (let i = 0; i < doc.length; i++) {
    h ^= doc.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const r = h % 20;
  return r === 0 ? 'test' : r === 1 ? 'validation' : 'train';
}

export function readSplit(split: Split, dir = DATA_DIR): string[] {
  const file = join(dir, `${split}.txt`);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`pnpm data\` first (it builds the corpus)`);
  }
  return splitDocuments(readFileSync(file, 'utf8'));
}

function build(): void {
  const work = join(DATA_DIR, '.debs');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  for (const p of SOURCE.packages) {
    execFileSync('apt-get', ['download', `${p.name}=${p.version}`], {
      cwd: work,
      stdio: 'inherit',
    });
    const deb = readdirSync(work).find((f) => f.startsWith(`${p.name}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${p.name} left no .deb in ${work}`);
    const hash = createHash('sha256')
      .update(readFileSync(join(work, deb)))
      .digest('hex');
    if (hash !== p.sha256) {
      throw new Error(`${deb}: SHA-256 ${hash}, expected ${p.sha256} (a different build?)`);
    }
    execFileSync('dpkg-deb', ['-x', deb, 'root'], { cwd: work });
  }
  const dir = join(work, 'root/usr/share/games/fortunes');
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((f) => f.isFile() && !f.name.includes('.'))
    .map((f) => f.name)
    .sort();
  const splits: Record<Split, string[]> = { train: [], validation: [], test: [] };
  const seen = new Set<string>();
  const perFile: Record<string, number> = {};
  for (const f of files) {
    // the files are Latin-1 or UTF-8; latin1 decoding keeps every byte as one character
    const docs = splitDocuments(readFileSync(join(dir, f), 'latin1'));
    perFile[f] = docs.length;
    for (const d of docs) {
      if (seen.has(d)) continue;
      seen.add(d);
      splits[splitOf(d)].push(d);
    }
  }
  for (const s of ['train', 'validation', 'test'] as const) {
    writeFileSync(join(DATA_DIR, `${s}.txt`), `${splits[s].join('\n%\n')}\n`);
  }
  const chars = (s: Split) => splits[s].reduce((n, d) => n + d.length + 1, 0);
  const meta = {
    source: SOURCE,
    files: perFile,
    documents: {
      train: splits.train.length,
      validation: splits.validation.length,
      test: splits.test.length,
    },
    characters: { train: chars('train'), validation: chars('validation'), test: chars('test') },
    split:
      'FNV-1a 32-bit hash of the document text mod 20: 0 test, 1 validation, else train; exact duplicates dropped',
  };
  writeFileSync(join(DATA_DIR, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  rmSync(work, { recursive: true, force: true });
  console.log(JSON.stringify(meta.documents), JSON.stringify(meta.characters));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(DATA_DIR, { recursive: true });
  build();
}
