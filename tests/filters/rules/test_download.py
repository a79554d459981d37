from filters.rules import download


def test_a_failed_download_is_rejected_under_its_status_and_an_ok_one_kept():
    assert download.RULE.check("http_404", "404 for x") == ("download_http_404", "404 for x")
    assert download.RULE.check("ok", None) is None
    assert download.RULE.gives("download_timeout")
