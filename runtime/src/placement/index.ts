export * from './placement';
export * from './type-constraints';
