from rest_framework.routers import SimpleRouter

from .views import OrderViewSet, ProductViewSet

router = SimpleRouter()
router.register("products", ProductViewSet, basename="product")
router.register("orders", OrderViewSet, basename="order")

urlpatterns = router.urls
