/**
 * Reading a backup zip, the one way both the verifier and the rewriter open one: lazily
 * (an entry is read only when asked for), names checked, sizes checked against the
 * central directory, and the file kept open until the caller closes it.
 */
import yauzl from 'yauzl';

export function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    ),
  );
}

/** The central directory's entries, read without inflating anything (yauzl parses only the records). */
export function listEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('error', reject);
    zip.on('end', () => resolve(entries));
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.readEntry();
  });
}
