// GraphQL Code Generator, client preset: typed documents for clients/operations from the committed schema.graphql.
// `npx graphql-codegen --config clients/codegen.ts`; CODEGEN_OUT puts the output elsewhere (the test uses a temp dir).
import type { CodegenConfig } from '@graphql-codegen/cli';

const out = process.env.CODEGEN_OUT || 'clients/generated/';

const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['clients/operations/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    [out]: {
      preset: 'client',
      config: {
        // The documented scalar mappings (README): ISO-8601 strings on the wire, JSON as unknown.
        scalars: { DateTime: 'string', Date: 'string', JSON: 'unknown' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};

export default config;
