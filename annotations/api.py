"""The Robotoff-compatible routes: questions, insights and annotations (robotoff-compat.md).

Anonymous callers are welcome here (they see the tenants that opted in with public_questions,
and their answers are votes); a key needs insights:read to read and insights:annotate to answer.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors, services
from annotations.models import Insight
from annotations.serializers import (
    AnnotateJsonSerializer,
    AnnotateSerializer,
    AnnotationAnswerSerializer,
    BarcodeQuestionQuerySerializer,
    BarcodeQuestionsSerializer,
    InsightListQuerySerializer,
    InsightListSerializer,
    InsightSerializer,
    InsightsSerializer,
    QuestionQuerySerializer,
    QuestionSerializer,
    QuestionsSerializer,
    RandomInsightQuerySerializer,
    UnansweredQuerySerializer,
    UnansweredSerializer,
    UserStatisticsSerializer,
    comma_list,
    language,
)
from images.models import Scope
from images.tenancy.auth import ClientPrincipal, ClientRateThrottle, is_operator, scopes_check
from kit.addresses import client_address
from kit.errors import DomainError
from kit.openapi import AutoSchema, error_responses
from kit.throttles import AddressRateThrottle


class InsightAccess(permissions.BasePermission):
    """Anyone may call; a keyed caller must hold the view's scopes (anonymous ones are limited
    to public tenants by the selectors, staff see every tenant)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if isinstance(user, ClientPrincipal):
            scopes_check(user, request, view)
        return True


class AnonymousThrottle(AddressRateThrottle):
    """Anonymous callers of the question and annotation routes."""

    def get_rate(self) -> str:
        return settings.INSIGHT_ANONYMOUS_RATE


class OptionalAuthSchema(AutoSchema):
    """These routes also answer anonymous callers: an empty security requirement says so."""

    def get_auth(self) -> list[dict[str, Any]]:
        return [*super().get_auth(), {}]


class InsightApiView(APIView):
    schema = OptionalAuthSchema()
    permission_classes = [InsightAccess]
    throttle_classes = [ClientRateThrottle, AnonymousThrottle]
    required_scopes = [Scope.INSIGHTS_READ]


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> Any:
    form = serializer_class(data=request.query_params)
    form.is_valid(raise_exception=True)
    return form


def _voter(request: Request, device_id: str | None) -> selectors.Voter:
    """Leave out what this device voted on; a keyed or staff caller without one, its own votes."""
    if device_id:
        return selectors.Voter(device_id=device_id)
    return selectors.Voter(
        device_id=_device_of_address(request),
        username=_username(request),
    )


def _device_of_address(request: Request) -> str:
    # A device id is the caller's word; without one, the address stands for the device.
    return services.device_id_for_address(_address(request))


def _address(request: Request) -> str:
    # A WSGI server always names the peer; an in-process caller may not: all such share one.
    return client_address(request) or "unknown"


def _username(request: Request) -> str | None:
    user = request.user
    if isinstance(user, ClientPrincipal):
        return user.username
    if is_operator(user):
        return user.get_username()
    return None


class QuestionsView(InsightApiView):
    order: str | None = None  # fixed by /random and /popular; else `order_by`

    @extend_schema(
        parameters=[QuestionQuerySerializer],
        responses={200: QuestionsSerializer},
        summary="Open questions",
    )
    def get(self, request: Request) -> Response:
        form = _valid(QuestionQuerySerializer, request)
        data = form.validated_data
        tenants = selectors.question_tenants(request)
        questions = selectors.open_questions(
            selectors.insights_of(tenants),
            form.filters(),
            _voter(request, data.get("device_id")),
        )
        count = selectors.question_count(questions)
        page = (
            selectors.question_page(
                selectors.with_pictures(questions),
                order_by=self.order or data["order_by"] or selectors.Order.RANDOM,
                count=data["count"],
                page=data["page"],
                tenants=tenants,
            )
            if count
            else []
        )
        return Response(
            {
                "count": count,
                "questions": _questions(page, request, language(data.get("lang"))),
                "status": "found" if page else "no_questions",
            }
        )


class RandomQuestionsView(QuestionsView):
    order = selectors.Order.RANDOM


class PopularQuestionsView(QuestionsView):
    order = selectors.Order.POPULARITY


def _questions(insights: list[Insight], request: Request, lang: str) -> list[dict[str, Any]]:
    return QuestionSerializer(insights, many=True, context={"request": request, "lang": lang}).data


class BarcodeQuestionsView(InsightApiView):
    @extend_schema(
        parameters=[BarcodeQuestionQuerySerializer],
        responses={200: BarcodeQuestionsSerializer},
        summary="Open questions about one subject",
        operation_id="questions_for_barcode",
    )
    def get(self, request: Request, barcode: str) -> Response:
        data = _valid(BarcodeQuestionQuerySerializer, request).validated_data
        filters = selectors.QuestionFilters(
            barcode=barcode,
            insight_types=comma_list(data.get("insight_types", "")),
        )
        questions = selectors.open_questions(
            selectors.visible_insights(request), filters, _voter(request, data.get("device_id"))
        )
        page = selectors.question_page(
            selectors.with_pictures(questions),
            order_by=selectors.Order.CONFIDENCE,
            count=data["count"],
        )
        return Response(
            {
                "status": "found" if page else "no_questions",
                "questions": _questions(page, request, language(data.get("lang"))),
            }
        )


class AnnotateView(InsightApiView):
    required_scopes = [Scope.INSIGHTS_ANNOTATE]

    @extend_schema(
        request={
            "application/x-www-form-urlencoded": AnnotateSerializer,
            "multipart/form-data": AnnotateSerializer,
            "application/json": AnnotateJsonSerializer,
        },
        responses={
            200: OpenApiResponse(
                AnnotationAnswerSerializer,
                description="Saved, updated, voted, or an answer such as error_unknown_insight.",
            ),
            400: OpenApiResponse(
                AnnotationAnswerSerializer,
                description="Malformed: error_invalid_data or error_missing_data.",
            ),
        },
        summary="Annotate an insight",
        operation_id="insights_annotate",
    )
    def post(self, request: Request) -> Response:
        try:
            payload = request.data
        except exceptions.ParseError as exc:
            # The contract's shape for every malformed request, unreadable bodies included.
            return _answer(services.INVALID_DATA.with_description(str(exc.detail)))
        form = AnnotateSerializer(data=payload)
        if not form.is_valid():
            return _answer(services.INVALID_DATA.with_description(_describe(form.errors)))
        data = form.validated_data
        if data["annotation"] == 2 and "data" not in data:
            return _answer(services.MISSING_DATA)
        if data["annotation"] != 2 and "data" in data:
            return _answer(
                services.INVALID_DATA.with_description("`data` is only accepted with annotation 2")
            )
        if data["insight_id"] is None:
            # Text that is no UUID names no insight: Robotoff's answer, not a malformed request.
            return _answer(services.UNKNOWN_INSIGHT)
        user = request.user
        result = services.insight_annotate(
            insight_id=data["insight_id"],
            annotation=data["annotation"],
            update=data["update"],
            data=data.get("data"),
            device_id=data.get("device_id") or _device_of_address(request),
            address=_address(request),
            username=_username(request),
            authenticated=isinstance(user, ClientPrincipal) or is_operator(user),
            insights=selectors.visible_insights(request),
        )
        return _answer(result)


def _answer(result: services.AnnotationResult) -> Response:
    malformed = result.status_code in services.MALFORMED_CODES
    return Response(result.as_dict(), status=400 if malformed else 200)


def _describe(errors: dict[str, Any]) -> str:
    return "; ".join(
        f"{name}: {' '.join(str(m) for m in messages)}" for name, messages in errors.items()
    )


class BarcodeInsightsView(InsightApiView):
    @extend_schema(
        responses={200: InsightsSerializer},
        summary="A subject's insights",
        operation_id="insights_for_barcode",
    )
    def get(self, request: Request, barcode: str) -> Response:
        insights = selectors.insights_for_barcode(selectors.visible_insights(request), barcode)
        return _insights(list(insights))


class InsightDetailView(InsightApiView):
    @extend_schema(
        responses={
            200: InsightSerializer,
            **error_responses({404: "No such insight."}),
        },
        summary="One insight",
        operation_id="insights_detail",
    )
    def get(self, request: Request, insight_id: str) -> Response:
        insight = selectors.visible_insights(request).filter(pk=insight_id).first()
        if insight is None:
            raise DomainError("insight_not_found", f"No insight {insight_id}.", 404)
        return Response(InsightSerializer(insight).data)


class RandomInsightsView(InsightApiView):
    @extend_schema(
        parameters=[RandomInsightQuerySerializer],
        responses={200: InsightsSerializer},
        summary="Random open insights",
        operation_id="insights_random",
    )
    def get(self, request: Request) -> Response:
        form = _valid(RandomInsightQuerySerializer, request)
        tenants = selectors.question_tenants(request)
        insights = selectors.question_page(
            selectors.open_questions(selectors.insights_of(tenants), form.filters()),
            order_by=selectors.Order.RANDOM,
            count=form.validated_data["count"],
            tenants=tenants,
        )
        return _insights(insights)


def _insights(insights: list[Insight], **extra: int) -> Response:
    """The shape of the insight routes: {[count,] insights, status}."""
    return Response(
        {
            **extra,
            "insights": InsightSerializer(insights, many=True).data,
            "status": "found" if insights else "no_insights",
        }
    )


class InsightListView(InsightApiView):
    @extend_schema(
        parameters=[InsightListQuerySerializer],
        responses={200: InsightListSerializer},
        summary="Insights, filtered and paged",
        operation_id="insights_list",
    )
    def get(self, request: Request) -> Response:
        form = _valid(InsightListQuerySerializer, request)
        data = form.validated_data
        tenants = selectors.question_tenants(request, open_only=False)
        insights = selectors.insights_filtered(selectors.insights_of(tenants), form.filters())
        count = selectors.question_count(insights)
        page = (
            selectors.question_page(
                insights,
                order_by=data.get("order_by") or selectors.Order.SUBJECT,
                count=data["count"],
                page=data["page"],
                tenants=tenants,
            )
            if count
            else []
        )
        return _insights(page, count=count)


class UnansweredQuestionsView(InsightApiView):
    @extend_schema(
        parameters=[UnansweredQuerySerializer],
        responses={200: UnansweredSerializer},
        summary="Open questions counted per value tag",
        operation_id="questions_unanswered",
    )
    def get(self, request: Request) -> Response:
        form = _valid(UnansweredQuerySerializer, request)
        count, rows = selectors.unanswered_cached(
            request,
            form.filters(),
            count=form.validated_data["count"],
            page=form.validated_data["page"],
        )
        return Response(
            {
                "count": count,
                "questions": [list(row) for row in rows],
                "status": "found" if rows else "no_questions",
            }
        )


class UserStatisticsView(InsightApiView):
    @extend_schema(
        responses={200: UserStatisticsSerializer},
        summary="How many insights a user annotated",
        operation_id="users_statistics",
    )
    def get(self, request: Request, username: str) -> Response:
        annotations = selectors.annotation_count(selectors.visible_insights(request), username)
        return Response({"count": {"annotations": annotations}})
