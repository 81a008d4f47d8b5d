"""Application forms (申請書作成), certificate requests and the back linkage (後方連携)."""
