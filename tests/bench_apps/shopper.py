"""A locustfile as users write one (`asyncguard bench orders:app -f shopper.py`): log in, then order and read the
order back, a two-step task with the token the login gave."""

from locust import FastHttpUser, constant, task


class Shopper(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        answer = self.client.post("/login", json={"user": "ann", "password": "open sesame"})
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    @task
    def order_then_read(self) -> None:
        made = self.client.post("/shops/7/orders", json={"item": "pen", "quantity": 1}, headers=self.headers)
        self.client.get(f"/shops/7/orders/{made.json()['id']}", headers=self.headers, name="/shops/7/orders/[id]")
