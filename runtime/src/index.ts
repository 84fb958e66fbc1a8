export { main } from './cli';
export { VERSION } from './version';
