// An emulator in its own process, so the client's CPU and memory are measured alone.
import { startEmulator, syntheticDeployment } from '../dist/emulator/index.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const emulator = await startEmulator({ ...options.emulator, tasks: syntheticDeployment(options.deployment ?? {}) });
process.stdout.write(`URL ${emulator.url}\n`);
process.on('SIGTERM', async () => {
  await emulator.close();
  process.exit(0);
});
