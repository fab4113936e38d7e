"""A partner's webhook receiver for the G60 platform: copy it, set G60_WEBHOOK_SECRET to the
endpoint's `whsec_…` secret, run `uvicorn webhook_receiver:app`. It checks the Standard
Webhooks signature and timestamp with the `standardwebhooks` package and answers 204; a bad
signature, a timestamp more than 5 minutes off or a missing header is a 400. The body is the
CloudEvent (structured mode): `event["type"]`, `event["subject"]`, `event["data"]`.
Deliveries are at least once: skip a `webhook-id` you have already handled."""

import os

from fastapi import FastAPI, HTTPException, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def create_app(secret: str, handle=print) -> FastAPI:
    app, webhook = FastAPI(), Webhook(secret)

    @app.post("/g60/webhooks", status_code=204)
    async def receive(request: Request) -> Response:
        try:
            event = webhook.verify(await request.body(), dict(request.headers))
        except WebhookVerificationError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        handle(event)
        return Response(status_code=204)

    return app


if "G60_WEBHOOK_SECRET" in os.environ:
    app = create_app(os.environ["G60_WEBHOOK_SECRET"])
