export * from './retain-service';
