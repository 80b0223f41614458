export {
  captureResources,
  expectNoLeakedResources,
  findLeakedResources,
  type ResourceSnapshot,
} from './resources';
