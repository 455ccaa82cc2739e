/**
 * Route validators compiled on first use instead of at start-up. Fastify compiles every route's
 * schemas with Ajv when the app becomes ready: ~300 ms of `nexus dev`'s start-up for routes most
 * runs never call. The same Ajv compiler does the work, just later; errors are unchanged.
 */
import ajvCompiler from '@fastify/ajv-compiler';

type Validator = ((data: unknown, ctx?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown };

export function lazyValidatorsFactory() {
  const factory = ajvCompiler();
  return (externalSchemas: unknown, ajvOptions: unknown) => {
    const build = (factory as unknown as (s: unknown, o: unknown) => (def: unknown) => Validator)(externalSchemas, ajvOptions);
    return (routeSchemaDef: unknown): Validator => {
      let compiled: Validator | undefined;
      const lazy: Validator = (data, ctx) => {
        compiled ??= build(routeSchemaDef);
        const result = compiled.schemaEnv && ctx !== undefined ? compiled(data, ctx) : compiled(data);
        lazy.errors = compiled.errors;
        return result;
      };
      // Fastify passes the parent object (so Ajv can mutate a root value) only when this is set.
      lazy.schemaEnv = true;
      return lazy;
    };
  };
}
