/**
 * `npm run setup:moto`: Python moto (the local EC2 + DynamoDB) in a project-local virtual
 * environment, .venv/ (gitignored), at the release the tests run against. npm start and
 * npm test find it there first; nothing is installed outside this repository.
 */
import { canSetUpMoto, LOCAL_VENV, MOTO_REQUIREMENT, setUpMoto } from './lib/moto.js';

if (!canSetUpMoto()) {
  console.error(
    'python3 with pip and venv is needed to set up moto (Debian/Ubuntu: sudo apt install python3-pip python3-venv).',
  );
  process.exit(1);
}
console.error(`Installing ${MOTO_REQUIREMENT} into ${LOCAL_VENV} ...`);
try {
  setUpMoto();
} catch (error) {
  console.error(`Setting up moto failed: ${(error as Error).message}`);
  process.exit(1);
}
console.error(`moto is ready in ${LOCAL_VENV}; npm start and npm test use it.`);
