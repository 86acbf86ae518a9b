// Model endpoints a run may name: URL normalisation, REFINERY_MODEL_ENDPOINTS parsing, and the
// provider refusing (when settings resolve and when a model is built) any base URL that is neither
// the operator's nor listed, so the API key is sent nowhere else.
import { describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import {
  normalizeEndpoint,
  parseModelEndpoints,
  OPENAI_DEFAULT_BASE_URL,
} from "../../core/models/endpoints.ts";
import { createModelProvider } from "../../core/models/provider.ts";
import { createSettingsResolver } from "../../core/settings.ts";

describe("normalizeEndpoint", () => {
  it.each([
    ["HTTPS://API.OpenAI.com:443/v1/", "https://api.openai.com/v1"],
    ["http://10.0.0.7:80/v1", "http://10.0.0.7/v1"],
    ["http://10.0.0.7:8000/v1//", "http://10.0.0.7:8000/v1"],
    ["http://[::1]:8000/v1", "http://[::1]:8000/v1"],
    ["http://llm.internal/a/../v1", "http://llm.internal/v1"],
    ["http://llm.internal/v1?api-version=1", "http://llm.internal/v1?api-version=1"],
  ])("%s is %s", (raw, normalized) => {
    expect(normalizeEndpoint(raw)).toBe(normalized);
  });

  it("keeps different ports, paths and credentials apart, and refuses other schemes", () => {
    expect(normalizeEndpoint("http://h:8000/v1")).not.toBe(normalizeEndpoint("http://h:8001/v1"));
    expect(normalizeEndpoint("http://h/v1")).not.toBe(normalizeEndpoint("http://h/v2"));
    expect(normalizeEndpoint("http://u@h/v1")).not.toBe(normalizeEndpoint("http://h/v1"));
    expect(normalizeEndpoint("ftp://h/v1")).toBeUndefined();
    expect(normalizeEndpoint("not a url")).toBeUndefined();
  });
});

describe("REFINERY_MODEL_ENDPOINTS", () => {
  it("is a comma-separated list of base URLs, read into the process settings", () => {
    expect(parseModelEndpoints(" http://10.0.0.7:8000/v1/ ,, https://llm.internal/v1")).toEqual([
      "http://10.0.0.7:8000/v1",
      "https://llm.internal/v1",
    ]);
    expect(
      processSettingsFromEnv({ REFINERY_MODEL_ENDPOINTS: "http://a/v1" }).modelEndpoints,
    ).toEqual(["http://a/v1"]);
    expect(processSettingsFromEnv({}).modelEndpoints).toEqual([]);
  });

  it("names itself when an entry is not an http(s) URL", () => {
    expect(() =>
      processSettingsFromEnv({ REFINERY_MODEL_ENDPOINTS: "http://a/v1,llm:8000" }),
    ).toThrow(
      expect.objectContaining({ code: "invalid_config", field: "REFINERY_MODEL_ENDPOINTS" }),
    );
  });
});

describe("the model provider", () => {
  const settings = {
    apiKey: "sk-test",
    baseURL: "http://10.0.0.5:8000/v1",
    model: "m",
    modelEndpoints: ["http://10.0.0.7:8000/v1"],
  };

  it("builds models for the operator's endpoint and the listed ones (compared normalised)", () => {
    const provider = createModelProvider(settings);
    expect(() => provider.forRole("generate", undefined)).not.toThrow();
    for (const baseURL of ["http://10.0.0.5:8000/v1/", "HTTP://10.0.0.7:8000/v1"])
      expect(() => provider.forRole("generate", { default: { baseURL } })).not.toThrow();
  });

  it("refuses any other base URL when the model is built, naming the field it came from", () => {
    const provider = createModelProvider(settings);
    const bad = "http://127.0.0.1:9999/v1";
    expect(() => provider.forRole("generate", { default: { baseURL: bad } })).toThrow(
      expect.objectContaining({
        code: "invalid_config",
        field: "models.default.baseURL",
        fix: expect.stringContaining("REFINERY_MODEL_ENDPOINTS"),
      }),
    );
    expect(() => provider.forRole("judge", { judge: { baseURL: bad } })).toThrow(
      expect.objectContaining({ field: "models.judge.baseURL" }),
    );
    // The OpenAI API is not the operator's endpoint here: the key belongs to 10.0.0.5.
    expect(() =>
      provider.forRole("generate", { default: { baseURL: OPENAI_DEFAULT_BASE_URL } }),
    ).toThrow(expect.objectContaining({ field: "models.default.baseURL" }));
  });

  it("allows the OpenAI API when no OPENAI_BASE_URL is set, and anything for the CLI", () => {
    const openai = createModelProvider({ apiKey: "k", model: "m" });
    expect(() =>
      openai.forRole("generate", { default: { baseURL: "https://api.openai.com/v1/" } }),
    ).not.toThrow();
    const cli = createModelProvider({ ...settings, modelEndpoints: "any" });
    expect(() =>
      cli.forRole("generate", { default: { baseURL: "http://127.0.0.1:9999/v1" } }),
    ).not.toThrow();
  });

  it("refuses when settings resolve, before any model is built (a 422 at run creation)", () => {
    const resolve = createSettingsResolver({ provider: createModelProvider(settings) });
    expect(() =>
      resolve({
        configurable: { models: { critique: { baseURL: "http://169.254.169.254/v1" } } },
      }),
    ).toThrow(expect.objectContaining({ field: "models.critique.baseURL" }));
  });
});
