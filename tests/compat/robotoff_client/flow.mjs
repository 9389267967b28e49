// A browser app's calls through Robotoff's official Node client (the one Hunger Games uses),
// as a web page on another origin makes them: every request names that origin and sends
// credentials. Prints one JSON object: what each call answered, with its CORS headers.
//
// Environment: API (the server's base URL), ORIGIN (the page's origin), OTHER_ORIGIN (one that
// is not allowed), API_KEY (a tenant's key), BARCODE, INSIGHT_ID, KEYED_INSIGHT_ID, USERNAME.
import { Robotoff } from "@openfoodfacts/openfoodfacts-nodejs";

const env = process.env;

function browserFetch(origin, extraHeaders = {}) {
  return (request) => {
    const headers = new Headers(request.headers);
    headers.set("Origin", origin);
    for (const [name, value] of Object.entries(extraHeaders)) headers.set(name, value);
    return fetch(new Request(request, { headers, credentials: "include" }));
  };
}

async function seen(call) {
  const { data, error, response } = await call;
  return {
    status: response.status,
    body: data ?? error,
    allowOrigin: response.headers.get("access-control-allow-origin"),
    allowCredentials: response.headers.get("access-control-allow-credentials"),
  };
}

async function preflight(path, method, requestHeaders, origin = env.ORIGIN) {
  const response = await fetch(`${env.API}/api/v1/${path}`, {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": method,
      "Access-Control-Request-Headers": requestHeaders,
    },
  });
  return {
    status: response.status,
    allowOrigin: response.headers.get("access-control-allow-origin"),
    allowCredentials: response.headers.get("access-control-allow-credentials"),
    allowMethods: response.headers.get("access-control-allow-methods"),
    allowHeaders: response.headers.get("access-control-allow-headers"),
  };
}

const options = { baseUrl: env.API };
const anonymous = new Robotoff(browserFetch(env.ORIGIN), options);
const keyed = new Robotoff(browserFetch(env.ORIGIN, { "X-API-Key": env.API_KEY }), options);
const stranger = new Robotoff(browserFetch(env.OTHER_ORIGIN), options);

const results = {
  preflightAnnotate: await preflight("insights/annotate", "POST", "content-type,user-agent"),
  preflightKeyed: await preflight("questions", "GET", "x-api-key,user-agent"),
  preflightStranger: await preflight("insights/annotate", "POST", "content-type", env.OTHER_ORIGIN),
  // The client's default page is 0, which Robotoff refuses: Hunger Games passes its page.
  questionsDefaultPage: await seen(anonymous.questions({ lang: "en" })),
  questions: await seen(anonymous.questions({ lang: "en", insight_types: "label" }, 1, 10)),
  questionsOfBarcode: await seen(anonymous.questionsByProductCode(env.BARCODE, { count: 5 })),
  insights: await seen(anonymous.insights({ annotated: false, page: 1, count: 10 })),
  insightsOfBarcode: await seen(anonymous.insights({ barcode: env.BARCODE })),
  unanswered: await seen(anonymous.getQuestionsUnanswered({ type: "label" }, 1, 25)),
  detail: await seen(anonymous.insightDetail(env.INSIGHT_ID)),
  vote: await seen(
    anonymous.annotate({ insight_id: env.INSIGHT_ID, annotation: 1, device_id: "hunger-1" }),
  ),
  notAUuid: await seen(anonymous.annotate({ insight_id: "not-a-uuid", annotation: 1 })),
  keyedAnnotation: await seen(
    keyed.annotate({ insight_id: env.KEYED_INSIGHT_ID, annotation: 1, update: 1 }),
  ),
  againAnnotated: await seen(
    keyed.annotate({ insight_id: env.KEYED_INSIGHT_ID, annotation: 0 }),
  ),
  statistics: await seen(anonymous.getUserStatistics(env.USERNAME)),
  strangerQuestions: await seen(stranger.questions({}, 1, 1)),
};
console.log(JSON.stringify(results));
