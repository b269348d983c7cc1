// The OpenAPI 3.1 document, generated from the route list: paths, scopes, and the JSON Schema of
// every input (and of the State outputs), so the document cannot drift from what is enforced.
import { z } from "zod";
import { ACT_HEADER, ORG_HEADER } from "../auth/resolve-principal.js";
import type { Route } from "./route.js";

const ERROR_BODY = {
  type: "object",
  required: ["error", "code"],
  properties: {
    error: { type: "string" },
    code: { type: "string" },
    parameter: { type: "string" },
  },
};

export function openApiDocument(routes: readonly Route[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Backstate API",
      version,
      description: "A self-hosted, State Backed compatible XState backend.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: { Error: ERROR_BODY },
    },
    paths,
  };
}

function operation(route: Route): unknown {
  const parameters: Array<Record<string, unknown>> = [
    ...objectParameters(route.params, "path"),
    ...objectParameters(route.query, "query"),
  ];
  if (route.access.kind === "org") {
    parameters.push(
      { name: ORG_HEADER, in: "header", required: false, schema: { type: "string" } },
      { name: ACT_HEADER, in: "header", required: false, schema: { type: "string" } },
    );
  }
  const success =
    route.status === 200
      ? {
          description: "OK",
          content: {
            "application/json": { schema: route.response ? jsonSchema(route.response) : {} },
          },
        }
      : { description: route.status === 201 ? "Created (no body)" : "Done (no body)" };
  return {
    summary: route.summary,
    ...(route.access.kind === "public" ? {} : { security: [{ bearer: [] }] }),
    ...(route.access.kind === "org" ? { "x-scopes-any-of": route.access.anyScope } : {}),
    parameters,
    ...requestBody(route),
    responses: {
      [String(route.status)]: success,
      default: {
        description: "Error",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      },
    },
  };
}

function requestBody(route: Route): object {
  if (route.body === undefined) return {};
  if (route.body === "multipart") {
    return {
      requestBody: {
        content: {
          "multipart/form-data": {
            schema: {
              type: "object",
              properties: { file: { type: "string", format: "binary" } },
            },
          },
        },
      },
    };
  }
  return { requestBody: { content: { "application/json": { schema: jsonSchema(route.body) } } } };
}

function objectParameters(schema: z.ZodType | undefined, location: "path" | "query") {
  if (!schema) return [];
  const json = jsonSchema(schema) as {
    properties?: Record<string, unknown>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: location,
    required: location === "path" || (json.required ?? []).includes(name),
    schema: property,
  }));
}

function jsonSchema(schema: z.ZodType): unknown {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
}
