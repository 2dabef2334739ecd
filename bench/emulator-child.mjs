// An emulator in its own process, so the client's CPU and memory are measured alone.
// Options: { emulator: EmulatorOptions, deployment?: SyntheticOptions, deployments?: SyntheticOptions[] }.
import { startEmulator, syntheticDeployment } from '../dist/emulator/index.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const parts = options.deployments ?? [options.deployment ?? {}];
const tasks = parts.flatMap((d) => syntheticDeployment(d));
const emulator = await startEmulator({ ...options.emulator, tasks });
process.stdout.write(`URL ${emulator.url}\n`);
process.on('SIGTERM', async () => {
  await emulator.close();
  process.exit(0);
});
